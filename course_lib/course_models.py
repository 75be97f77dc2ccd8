"""How notebook 07 gets back the generators that notebooks 03 to 06 trained.

Notebooks 03, 04 and 06 show their training: the model built in the strategy's scope, a
visible ``fit`` with the resumable callbacks of ``course_lib.training``, its energy
logged in the training folder. Each function here repeats one of those training cells
(the same build, data, training folder and epochs) through
``course_lib.training.train_or_restore``: when the folder holds the finished training,
``fit`` only restores the weights (nothing is trained or measured); when it does not
(notebook 07 run on its own), the model is trained now, at its notebook's preset size,
and a disconnected session resumes where it stopped. The VQ-VAE is the exception:
notebook 05 trains it on instrument notes, and :func:`vq_vae_with_prior` trains one of
the same preset size on the spoken digits, so that the judge can score it.

Each training folder is ``checkpoints / <model folder> / cfg.tag()``, where
``checkpoints`` is the course's checkpoint folder that the notebook passes
(``config.checkpoint_root()``, on Google Drive when mounted), the parent of the folders
notebooks 03, 04 and 06 train in. The tag hashes only the settings that change training
(architecture, optimiser, data, epochs or steps, ...), not those marked
``config.not_training`` (guidance, DDIM steps, temperature, score counts, Griffin-Lim
iterations, ...): a config that trains differently trains a new model, one that only
samples or scores differently restores the trained one. The energy of the sessions that
trained is summed
in the folder (``course_lib.training.read_energy``).

Used in: 07_compare_models.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from course_lib import config, data, training

# The training folders of notebooks 03, 04 and 06 (config.checkpoint_dir(name) / cfg.tag()).
DIFFUSION_FOLDER = "diffusion_sc09"
VAE_FOLDER = "vae_speech"
VQ_FOLDER = "vq_speech"
WAVENET_FOLDER = "wavenet_sc09"


def diffusion(
    folder: str | Path,
    cfg,
    checkpoints: str | Path,
    callbacks: Sequence = (),
    verbose: int | str = 2,
) -> training.Trained:
    """The class-conditioned diffusion model of notebook 03 on a converted dataset
    (its training cell: section 2)."""
    from course_lib import diffusion as diffusion_lib

    manifest = data.read_manifest(folder)
    config.set_seed(0)
    with config.strategy().scope():
        model = diffusion_lib.build_diffusion_model(
            cfg, num_classes=len(manifest.labels), clip_samples=manifest.clip_samples
        )
    train = data.load_split(folder, "train", batch_size=cfg.batch_size)
    run_folder = Path(checkpoints) / DIFFUSION_FOLDER / cfg.tag()
    return training.train_or_restore(
        model,
        train,
        run_folder,
        cfg.epochs,
        callbacks,
        minutes=cfg.training_minutes,
        verbose=verbose,
    )


def vae(
    folder: str | Path,
    cfg,
    checkpoints: str | Path,
    callbacks: Sequence = (),
    verbose: int | str = 2,
) -> training.Trained:
    """The spectrogram VAE of notebook 04 on a converted dataset, validated each epoch
    (its training cell: section 3), with the prior that new clips are drawn from (section
    5) in ``extras["latent_prior"]``: a mixture of ``cfg.prior_components`` Gaussians
    fitted to the codes of the training clips (``vae.LatentMixturePrior``)."""
    from course_lib import vae as vae_lib

    clip_samples = data.read_manifest(folder).clip_samples
    config.set_seed(cfg.seed)
    with config.strategy().scope():
        model = vae_lib.build_vae(clip_samples, cfg)
    train = data.load_split(folder, "train", batch_size=cfg.batch_size, seed=cfg.seed)
    validation = data.load_split(folder, "validation", batch_size=256, shuffle=False)
    run_folder = Path(checkpoints) / VAE_FOLDER / cfg.tag()
    trained = training.train_or_restore(
        model,
        train,
        run_folder,
        cfg.epochs,
        callbacks,
        minutes=cfg.training_minutes,
        validation_data=validation,
        verbose=verbose,
    )
    in_file_order = data.load_split(folder, "train", batch_size=256, shuffle=False)
    trained.extras["latent_prior"] = vae_lib.fit_to_training_clips(
        model, in_file_order, cfg.prior_components, cfg.seed
    )
    trained.extras["cfg"] = cfg
    return trained


def vq_vae_with_prior(
    folder: str | Path,
    cfg,
    checkpoints: str | Path,
    verbose: int | str = 2,
    callbacks: Sequence = (),
) -> training.Trained:
    """A VQ-VAE of notebook 05's preset size on the clips of a converted dataset, with its
    Naive Bayes prior over code maps in ``extras["naive_bayes"]``: positional (a code's
    place in the map is one of its features), with neighbours within ``cfg.prior_radius``.

    Notebook 05 trains on NSynth notes; notebook 07 uses this on the spoken digits so
    that the same judge can score it. As in notebook 05, the spectrogram images are
    computed batch by batch as the split is read (``vq.spectrogram_dataset``), for
    training and for the prior's counts, so memory does not grow with the dataset.
    """
    from course_lib import inpainting, vq

    clip_samples = data.read_manifest(folder).clip_samples
    train = vq.spectrogram_dataset(folder, "train", cfg.spec, cfg.batch_size, seed=cfg.seed)
    config.set_seed(cfg.seed)
    with config.strategy().scope():
        model = vq.build_vq_vae(cfg, cfg.spec.shape(clip_samples))
    trained = training.train_or_restore(
        model,
        train,
        Path(checkpoints) / VQ_FOLDER / cfg.tag(),
        cfg.epochs,
        callbacks,
        verbose=verbose,
        minutes=cfg.training_minutes,
    )
    in_file_order = vq.spectrogram_dataset(folder, "train", cfg.spec, cfg.batch_size, shuffle=False)
    trained.extras["naive_bayes"] = inpainting.CodeNaiveBayes(
        cfg.codebook_size, radius=cfg.prior_radius, positional=True
    ).fit_batches(model.code_batches(in_file_order))
    trained.extras["code_shape"] = model.code_shape()
    trained.extras["cfg"] = cfg
    return trained


def wavenet(
    folder: str | Path, cfg, checkpoints: str | Path, logdir: str | Path | None = None
) -> training.Trained:
    """The word-conditioned WaveNet of notebook 06 (its training cell: section 3), trained
    with all of ``cfg``'s settings by :func:`~course_lib.wavenet.logdir.train_wavenet`
    (what its command line runs) into ``logdir`` (default
    ``checkpoints / "wavenet_sc09" / cfg.tag()``), which resumes from the last
    checkpoint and restores a finished training.

    A converted dataset's sample rate replaces ``cfg``'s (as on the command line) before
    the tag is taken, so the folder is keyed on the settings actually trained.

    Raises:
        ValueError: ``logdir`` holds a WaveNet trained with other training settings.
    """
    from course_lib.wavenet import checkpoints as wavenet_checkpoints
    from course_lib.wavenet.logdir import read_logdir, train_wavenet

    if (Path(folder) / data.MANIFEST_NAME).is_file():
        cfg = cfg.replace(sample_rate=data.read_manifest(folder).sample_rate)
    logdir = Path(logdir) if logdir is not None else Path(checkpoints) / WAVENET_FOLDER / cfg.tag()
    started = wavenet_checkpoints.checkpoint_path(logdir).is_file()
    saved_tag = read_logdir(logdir)["config"].tag() if started else cfg.tag()
    if saved_tag != cfg.tag():
        raise ValueError(
            f"{logdir} holds a WaveNet trained with other settings (tag {saved_tag}, not "
            f"{cfg.tag()}); use another logdir (the default one is keyed on cfg.tag())."
        )
    return train_wavenet(cfg, folder, logdir)


def sample_vq_sounds(
    trained: training.Trained, n: int, seed: int = 0, sweeps: int | None = None
) -> np.ndarray:
    """New clips ``[n, samples]`` from a VQ-VAE and its Naive Bayes prior: whole code maps
    drawn from the prior, refined by Gibbs sweeps (``cfg.prior_sweeps`` unless ``sweeps``),
    decoded and inverted (Griffin-Lim)."""
    from course_lib import spectrogram

    cfg = trained.extras["cfg"]
    height, width = trained.extras["code_shape"]
    naive_bayes = trained.extras["naive_bayes"]
    start = np.zeros((n, height, width), np.int32)
    codes = naive_bayes.resample_region(
        start,
        (0, height),
        (0, width),
        sweeps=sweeps or cfg.prior_sweeps,
        temperature=1.0,
        seed=seed,
        reinitialize=True,
    )
    images = trained.model.decode_codes(codes)
    return spectrogram.to_audio(images, cfg.clip_samples, cfg.spec, cfg.griffin_lim_iterations)


def sample_vae_sounds(trained: training.Trained, n: int, seed: int = 0) -> np.ndarray:
    """New clips ``[n, samples]`` from a VAE of :func:`vae`: codes drawn from its fitted
    prior (``extras["latent_prior"]``), decoded and inverted (Griffin-Lim)."""
    cfg = trained.extras["cfg"]
    codes = trained.extras["latent_prior"].sample(n, seed)
    return trained.model.decode_to_audio(codes, cfg.griffin_lim_iterations)


def reconstruct_vq_sounds(trained: training.Trained, clips: np.ndarray) -> np.ndarray:
    """Clips ``[n, samples]`` through a VQ-VAE of :func:`vq_vae_with_prior` and back:
    spectrogram images, code maps, decoded images, and Griffin-Lim audio ``[n, samples]``
    (what the word must survive, ``comparison.with_reconstruction``)."""
    from course_lib import spectrogram, vq

    cfg = trained.extras["cfg"]
    images = trained.model.reconstruct(vq.spectrogram_images(clips, cfg.spec))
    return spectrogram.to_audio(images, cfg.clip_samples, cfg.spec, cfg.griffin_lim_iterations)
