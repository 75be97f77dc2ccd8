"""The course's generators, trained once and restored afterwards, with their energy bill.

Notebooks 03 to 06 train their model through these functions, and notebook 07 calls the
same functions to get every model back: when the training folder already holds the
finished training, the weights are restored and nothing is trained again; when it does
not (notebook 07 run on its own), the model is trained at its notebook's preset size.

Each training folder is ``config.checkpoint_dir(<model>) / cfg.tag()`` (on Google Drive
when mounted). The tag hashes only the settings that change training (architecture,
optimiser, data, epochs or steps, ...), not those marked ``config.not_training``
(guidance, DDIM steps, temperature, score counts, Griffin-Lim iterations, ...): a
config that trains differently trains a new model, one that only samples or scores
differently restores the trained one, and a disconnected session resumes where it
stopped (``course_lib.training.resumable_fit``). The energy of the
sessions that trained (``course_lib.energy``) is summed in ``training_energy.json``.

Used in: 03_diffusion.ipynb, 04_vae_fid.ipynb, 06_wavenet.ipynb, 07_compare_models.ipynb.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from course_lib import config, data, energy, training

ENERGY_NAME = "training_energy.json"


@dataclasses.dataclass
class Trained:
    """A trained model and how it got there.

    Attributes:
        model: the Keras model.
        history: per-epoch metrics of every session (``fit().history`` layout).
        training_energy: energy of all training sessions (``measured`` is False when
            no session measured it).
        folder: the training folder.
        extras: model-specific companions (e.g. the Naive Bayes prior of a VQ-VAE).
    """

    model: Any
    history: dict[str, list[float]]
    training_energy: energy.EnergyReport
    folder: Path
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


def diffusion(
    folder: str | Path,
    cfg=None,
    callbacks: Sequence = (),
    verbose: int | str = 2,
) -> Trained:
    """The class-conditioned diffusion model of notebook 03 on a converted dataset."""
    from course_lib import diffusion as diffusion_lib

    cfg = cfg or diffusion_lib.DiffusionConfig.for_mode()
    manifest = data.read_manifest(folder)
    config.set_seed(0)
    with config.strategy().scope():
        model = diffusion_lib.build_diffusion_model(
            cfg, num_classes=len(manifest.labels), clip_samples=manifest.clip_samples
        )
    train = data.load_split(folder, "train", batch_size=cfg.batch_size, cache=True)
    return _train_or_restore(
        model, train, "diffusion_sc09", cfg, cfg.epochs, callbacks, verbose=verbose
    )


def vae(
    folder: str | Path,
    cfg=None,
    callbacks: Sequence = (),
    verbose: int | str = 2,
) -> Trained:
    """The spectrogram VAE of notebook 04 on a converted dataset (validated each epoch)."""
    from course_lib import vae as vae_lib

    cfg = cfg or vae_lib.VAEConfig.for_mode()
    clip_samples = data.read_manifest(folder).clip_samples
    config.set_seed(cfg.seed)
    with config.strategy().scope():
        model = vae_lib.build_vae(clip_samples, cfg)
    train = data.load_split(folder, "train", batch_size=cfg.batch_size, seed=cfg.seed, cache=True)
    validation = data.load_split(folder, "validation", batch_size=256, shuffle=False, cache=True)
    return _train_or_restore(
        model,
        train,
        "vae_speech",
        cfg,
        cfg.epochs,
        callbacks,
        validation_data=validation,
        verbose=verbose,
    )


def vq_vae_with_prior(folder: str | Path, cfg=None, verbose: int | str = 2) -> Trained:
    """A VQ-VAE of notebook 05's preset size on the clips of a converted dataset, with its
    Naive Bayes prior over code maps in ``extras["naive_bayes"]``.

    Notebook 05 trains on NSynth notes; notebook 07 uses this on the spoken digits so
    that the same judge can score it.
    """
    from course_lib import inpainting, vq

    manifest = data.read_manifest(folder)
    cfg = cfg or vq.VQConfig.for_mode().replace(
        dataset="speech", clip_seconds=manifest.clip_samples / manifest.sample_rate
    )
    if manifest.sample_rate != cfg.sample_rate:
        raise ValueError(
            f"{folder} holds {manifest.sample_rate} Hz audio but the VQ config expects "
            f"{cfg.sample_rate} Hz."
        )
    images = vq.spectrogram_images(data.read_arrays(folder, "train")[0], cfg.spec)
    config.set_seed(cfg.seed)
    with config.strategy().scope():
        model = vq.build_vq_vae(images.shape[1:3], cfg)
    trained = _train_or_restore(
        model,
        images,
        "vq_speech",
        cfg,
        cfg.epochs,
        (),
        batch_size=cfg.batch_size,
        verbose=verbose,
    )
    codes = model.encode_codes(images)
    trained.extras["naive_bayes"] = inpainting.CodeNaiveBayes(
        cfg.codebook_size, radius=cfg.radius
    ).fit(codes)
    trained.extras["code_shape"] = codes.shape[1:]
    trained.extras["cfg"] = cfg
    return trained


def wavenet(folder: str | Path, cfg=None, logdir: str | Path | None = None) -> Trained:
    """The word-conditioned WaveNet of notebook 06, trained with all of ``cfg``'s settings
    by :func:`~course_lib.wavenet.logdir.train_into_logdir` (what its command line runs) into
    ``logdir`` (default ``config.checkpoint_dir("wavenet_sc09") / cfg.tag()``), which
    resumes from the last checkpoint.

    A converted dataset's sample rate replaces ``cfg``'s (as on the command line) before
    the tag is taken, so the folder is keyed on the settings actually trained.

    Raises:
        ValueError: ``logdir`` holds a WaveNet trained with other training settings.
    """
    from course_lib.wavenet import WaveNetConfig, checkpoints
    from course_lib.wavenet.logdir import read_logdir, train_into_logdir

    cfg = cfg or WaveNetConfig.for_mode()
    if (Path(folder) / data.MANIFEST_NAME).is_file():
        cfg = cfg.replace(sample_rate=data.read_manifest(folder).sample_rate)
    logdir = (
        Path(logdir) if logdir is not None else config.checkpoint_dir("wavenet_sc09") / cfg.tag()
    )
    started = checkpoints.checkpoint_path(logdir).is_file()
    saved_tag = read_logdir(logdir)["config"].tag() if started else cfg.tag()
    if saved_tag != cfg.tag():
        raise ValueError(
            f"{logdir} holds a WaveNet trained with other settings (tag {saved_tag}, not "
            f"{cfg.tag()}); use another logdir (the default one is keyed on cfg.tag())."
        )
    done = started and checkpoints.read_losses(logdir)["step"][-1:] == [cfg.steps]
    report = None
    if not done:
        with energy.measure_energy("training") as report:
            print(train_into_logdir(cfg, folder, logdir))
    total = _add_energy(logdir, report)
    model = checkpoints.load_checkpoint(logdir, compile=False)
    losses = checkpoints.read_losses(logdir)
    return Trained(model, {"loss": losses["loss"], "step": losses["step"]}, total, logdir)


def sample_vq_sounds(
    trained: Trained, n: int, seed: int = 0, sweeps: int | None = None
) -> np.ndarray:
    """New clips ``[n, samples]`` from a VQ-VAE and its Naive Bayes prior: whole code maps
    drawn from the prior, refined by Gibbs sweeps, decoded and inverted (Griffin-Lim)."""
    from course_lib import spectrogram

    cfg = trained.extras["cfg"]
    height, width = trained.extras["code_shape"]
    naive_bayes = trained.extras["naive_bayes"]
    start = np.zeros((n, height, width), np.int32)
    codes = naive_bayes.resample_region(
        start,
        (0, height),
        (0, width),
        sweeps=sweeps or cfg.sweeps,
        temperature=1.0,
        seed=seed,
        reinitialize=True,
    )
    images = trained.model.decode_codes(codes)
    return spectrogram.to_audio(images, cfg.clip_samples, cfg.spec, cfg.griffin_lim_iterations)


def _train_or_restore(model, x, name: str, cfg, epochs: int, callbacks, **fit_options) -> Trained:
    folder = config.checkpoint_dir(name) / cfg.tag()
    finished = len(training.read_history(folder).get("loss", [])) >= epochs
    # A finished training only restores its weights: nothing to measure.
    measuring = contextlib.nullcontext() if finished else energy.measure_energy("training")
    with measuring as report:
        history = training.resumable_fit(model, x, folder, epochs, list(callbacks), **fit_options)
    total = _add_energy(folder, report)
    return Trained(model, history, total, folder)


def _add_energy(folder: Path, report: energy.EnergyReport | None) -> energy.EnergyReport:
    """Add a session's energy to the folder's running total and return the total."""
    path = Path(folder) / ENERGY_NAME
    total = (
        energy.EnergyReport(**json.loads(path.read_text()))
        if path.is_file()
        else energy.EnergyReport("training", reason="no training session was measured")
    )
    if report is not None:
        if report.measured:
            total = energy.EnergyReport(
                "training",
                seconds=total.seconds + report.seconds,
                energy_kwh=(total.energy_kwh or 0.0) + report.energy_kwh,
                co2_kg=(total.co2_kg or 0.0) + report.co2_kg,
                method=report.method,
                measured=True,
            )
        else:
            total = dataclasses.replace(
                total, seconds=total.seconds + report.seconds, reason=report.reason
            )
        path.write_text(json.dumps(dataclasses.asdict(total)))
    return total
