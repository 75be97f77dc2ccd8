"""A WaveNet log directory, as ibab/tensorflow-wavenet keeps one: train into it, generate
from it.

A log directory holds ``wavenet_config.json`` (settings, sample rate, label names),
``model.keras`` (the last checkpoint with its optimizer state, see
:mod:`course_lib.wavenet.checkpoints`) and ``losses.jsonl``. Training again resumes from
the checkpoint, and the step counter continues.

- :func:`restore_or_build`: the WaveNet to train into a log directory: its last checkpoint,
  or a new one;
- :func:`train_wavenet`: train a :class:`WaveNetConfig` on a folder of audio files or a
  converted dataset up to ``config.steps``, with a checkpoint every
  ``config.checkpoint_every`` steps (``course_lib.training.train_or_restore``, which also
  logs the energy);
- :func:`training_batches`: the training crops of a config, from a folder of audio files
  or a converted dataset (with its words aligned, for word-over-time conditioning);
- :func:`generate_into_wav`: generate clips from a trained log directory into WAV files;
- :func:`read_logdir`, :func:`write_logdir_config`: the saved settings.

``python -m course_lib.wavenet train|generate`` parses its options, calls
:func:`train_wavenet` or :func:`generate_into_wav`, and prints a summary line.
Keras and TensorFlow are imported only once the data and the settings are checked, so a
mistake costs one line and no TensorFlow start-up.

Used in: 06_wavenet.ipynb (its training cell shows the steps of :func:`train_wavenet`),
07_compare_models.ipynb (through ``course_lib.course_models.wavenet``), the command line.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from course_lib import audio, data
from course_lib.wavenet import training_data
from course_lib.wavenet.files import CHECKPOINT_NAME, CONFIG_NAME
from course_lib.wavenet.settings import WaveNetConfig

if TYPE_CHECKING:
    import keras

    from course_lib import training


def read_logdir(logdir: Path) -> dict:
    """The saved settings of a log directory: ``config``, ``label_names``.

    Raises:
        FileNotFoundError: no config or no checkpoint (not trained yet).
    """
    config_path, checkpoint = logdir / CONFIG_NAME, logdir / CHECKPOINT_NAME
    if not config_path.is_file() or not checkpoint.is_file():
        raise FileNotFoundError(
            f"{logdir} holds no trained WaveNet ({CONFIG_NAME} and {CHECKPOINT_NAME}); "
            "run `python -m course_lib.wavenet train` first."
        )
    saved = json.loads(config_path.read_text())
    return {
        "config": WaveNetConfig.from_dict(saved["config"]),
        "label_names": list(saved.get("label_names", [])),
    }


def write_logdir_config(logdir: Path, config, label_names: Sequence[str]) -> None:
    """Write ``wavenet_config.json`` atomically."""
    logdir.mkdir(parents=True, exist_ok=True)
    path = logdir / CONFIG_NAME
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(
        json.dumps(
            {
                "config": config.to_dict(),
                "label_names": list(label_names),
                "receptive_field": config.receptive_field,
            },
            indent=2,
        )
    )
    os.replace(temporary, path)


def restore_or_build(
    config: WaveNetConfig,
    label_names: Sequence[str],
    logdir: str | Path,
    *,
    restore_from: str | Path | None = None,
    seed: int = 0,
    clip_samples: int = 0,
) -> keras.Model:
    """The WaveNet to train into ``logdir``, in ``course_lib.config.strategy()``'s scope:
    the last checkpoint of ``restore_from`` (default: ``logdir``, when it holds one) with
    its optimizer state and step counter, or a new one with ``config``'s architecture
    (weights seeded by ``seed``). Writes ``logdir``'s ``wavenet_config.json``.

    Args:
        config: the settings to train with (see :func:`write_logdir_config`).
        label_names: the words to condition on ([] for none).
        logdir: the log directory to train into.
        restore_from: a log directory to start from.
        seed: the seed of new weights.
        clip_samples: the training clips' length, which the word-over-time frames share
            (``config.label_frames > 0``: a converted dataset's ``clip_samples``).
    """
    from course_lib import config as course_config
    from course_lib.wavenet import checkpoints
    from course_lib.wavenet.model import build_wavenet

    logdir = Path(logdir)
    if restore_from is None and checkpoints.checkpoint_path(logdir).is_file():
        restore_from = logdir
    course_config.set_seed(seed)
    with course_config.strategy().scope():
        if restore_from is not None:
            model = checkpoints.load_checkpoint(restore_from)
        else:
            model = build_wavenet(config, num_classes=len(label_names), clip_samples=clip_samples)
    write_logdir_config(logdir, config, label_names)
    return model


def train_wavenet(
    config: WaveNetConfig,
    data_dir: str | Path,
    logdir: str | Path,
    *,
    restore_from: str | Path | None = None,
    seed: int = 0,
    sample_rate: int | None = None,
) -> training.Trained:
    """Train a WaveNet with all of ``config``'s settings until ``config.steps``, saving a
    checkpoint in ``logdir`` every ``config.checkpoint_every`` steps.

    What ``python -m course_lib.wavenet train`` runs (with the preset and its options),
    and what notebook 06's training cell shows step by step: :func:`restore_or_build`,
    crops from ``course_lib.wavenet.training_data``, and ``fit`` with
    ``checkpoints.StepCheckpoints`` through ``course_lib.training.train_or_restore``
    (which logs the energy of a session that trains; a finished training is only
    restored). A converted dataset's sample rate replaces ``config``'s. Training resumes
    from the checkpoint in ``restore_from`` (default: ``logdir`` when it holds one), whose
    weights and optimizer win over ``config``'s model settings: keep one ``logdir`` per
    config (``config.tag()``).

    Args:
        config: the settings to train with.
        data_dir: a folder of audio files or a converted dataset.
        logdir: where ``wavenet_config.json``, the checkpoint and the losses are written.
        restore_from: a log directory to start from.
        seed: weights and crops seed.
        sample_rate: the command line's ``--sample-rate`` (checked against the data).

    Returns:
        The trained model with ``history = {"step": [...], "loss": [...]}`` (one entry
        per checkpoint) and ``extras["start_step"]``, the step this session started at.

    Raises:
        ValueError, FileNotFoundError, NotADirectoryError: unusable data or a checkpoint
            trained on other labels or at another rate.
    """
    from course_lib import training
    from course_lib.wavenet import checkpoints

    data_dir, logdir = Path(data_dir), Path(logdir)
    if restore_from is None and (logdir / CHECKPOINT_NAME).is_file():
        restore_from = logdir
    restore_dir = Path(restore_from) if restore_from is not None else None
    label_names = read_logdir(restore_dir)["label_names"] if restore_dir is not None else None
    source, config, label_names, summary = _training_data(
        data_dir, sample_rate, config, label_names
    )
    print(summary)

    clip_samples = data.read_manifest(source).clip_samples if config.label_frames else 0
    model = restore_or_build(
        config, label_names, logdir, restore_from=restore_dir, seed=seed, clip_samples=clip_samples
    )
    start_step = checkpoints.trained_steps(model)
    if restore_dir is not None:
        verb = "resuming from" if start_step < config.steps else "restored the finished training at"
        print(f"{verb} step {start_step} ({checkpoints.checkpoint_path(restore_dir)})")
    if start_step < config.steps:
        print(
            f"training: receptive field {model.receptive_field} samples, "
            f"{model.count_params():,} weights, steps {start_step} -> {config.steps}"
        )
    # A new crop seed per start step, so a resumed run does not replay the same crops.
    crops = training_batches(source, config, bool(label_names), seed=seed + start_step)
    trained = training.train_or_restore(
        model,
        crops,
        logdir,
        checkpoints.intervals_to_train(logdir, config, start_step),  # 0: fit only returns
        checkpoints.training_callbacks(logdir, config),
        backup=False,  # the step checkpoints are the backup
        steps_per_epoch=config.checkpoint_every,
        verbose=0,
    )
    losses = checkpoints.read_losses(logdir)
    return dataclasses.replace(
        trained,
        history={"loss": losses["loss"], "step": losses["step"]},
        extras={"start_step": start_step},
    )


def _training_data(folder: Path, sample_rate: int | None, config, label_names):
    """The checked data source (a corpus or a converted folder), the config with its
    sample rate (and ``label_frames`` 0 unless the data are words in same-length clips),
    the label names and a summary line (``sample_rate``: ``--sample-rate``)."""
    if not folder.is_dir():
        raise NotADirectoryError(f"--data-dir {folder} is not a folder.")
    if (folder / data.MANIFEST_NAME).is_file():
        manifest = data.read_manifest(folder)
        if not manifest.splits.get("train", {}).get("examples"):
            raise ValueError(f"no usable audio in {folder}: its train split is empty.")
        if sample_rate and sample_rate != manifest.sample_rate:
            raise ValueError(
                f"{folder} was converted at {manifest.sample_rate} Hz, not "
                f"{sample_rate}: drop --sample-rate or convert again."
            )
        if label_names is not None and config.sample_rate != manifest.sample_rate:
            raise ValueError(
                f"{folder} was converted at {manifest.sample_rate} Hz but the checkpoint "
                f"was trained at {config.sample_rate} Hz; use a new --logdir."
            )
        config = config.replace(sample_rate=manifest.sample_rate)
        source = folder
        found = list(manifest.labels)
        summary = (
            f"data: converted dataset {folder}, {manifest.splits['train']['examples']} "
            f"training clips, {len(found)} labels, {manifest.sample_rate} Hz"
        )
    else:
        corpus = training_data.load_audio_folder(
            folder, config.sample_rate, config.silence_threshold
        )
        found, source = corpus.label_names, corpus
        seconds = corpus.total_samples / config.sample_rate
        summary = (
            f"data: {len(corpus.clips)} clips ({seconds:.1f} s) in {len(found)} "
            f"label(s) from {folder}, resampled to "
            f"{config.sample_rate} Hz; skipped {len(corpus.skipped)} file(s)"
        )
    if len(found) < 2:
        found = []  # one label: nothing to condition on, so nothing to guide towards
        config = config.replace(p_uncond=0.0, guidance=1.0)
    if config.label_frames and (not found or isinstance(source, training_data.AudioCorpus)):
        # The word over time needs words in same-length clips: a converted dataset's.
        config = config.replace(label_frames=0)
        summary += "; no words in same-length clips, so one label vector per clip"
    if label_names is not None and list(label_names) != list(found):
        raise ValueError(
            f"the checkpoint was trained on labels {label_names}, but {folder} has "
            f"{found or 'none'}; use a new --logdir for new labels."
        )
    return source, config, found, summary


def training_batches(
    source: training_data.AudioCorpus | str | Path,
    config: WaveNetConfig,
    with_labels: bool,
    seed: int,
):
    """The endless training batches of ``config`` from a corpus or a converted dataset
    folder: ``training_data.crop_dataset`` or ``crop_dataset_from_records``, the latter
    with the words moved to ``config.word_onset`` when ``config.label_frames`` > 0."""
    common = {
        "receptive_field": config.receptive_field,
        "target_length": config.target_length,
        "batch_size": config.batch_size,
        "seed": seed,
        "with_labels": with_labels,
        "quantization_channels": config.quantization_channels,
    }
    if isinstance(source, training_data.AudioCorpus):
        return training_data.crop_dataset(source, **common)
    return training_data.crop_dataset_from_records(
        source,
        silence_threshold=config.silence_threshold,
        word_onset=config.word_onset if config.label_frames else None,
        **common,
    )


def generate_into_wav(
    logdir: str | Path,
    samples: int,
    wav_out_path: str | Path,
    *,
    clips: int = 1,
    label: str | None = None,
    seed_wav: str | Path | None = None,
    temperature: float = 1.0,
    seed: int | None = None,
    method: str = "fast",
    guidance: float | None = None,
) -> str:
    """Generate ``clips`` clips of ``samples`` samples from the WaveNet trained in
    ``logdir`` and write them as WAV files; returns a summary.

    What ``python -m course_lib.wavenet generate`` runs. One clip goes to
    ``wav_out_path``; several go to ``<stem>_0.wav``, ``<stem>_1.wav``, ...

    Args:
        logdir: a log directory written by :func:`train_wavenet`.
        samples: samples per clip.
        wav_out_path: the WAV file to write.
        clips: clips generated in one batch.
        label: a label name, for a conditioned model (default: its first label).
        seed_wav: a clip to continue (silence trimmed).
        temperature: softmax temperature; 0 is greedy.
        seed: sampling seed.
        method: ``"fast"`` (cached) or ``"naive"``.
        guidance: classifier-free guidance weight (None: the trained settings' own, or 1
            for a model trained without label dropout).

    Raises:
        FileNotFoundError: nothing trained in ``logdir``.
        ValueError: a count below 1, or a label the model does not know.
    """
    logdir, wav_out_path = Path(logdir), Path(wav_out_path)
    saved = read_logdir(logdir)
    config, label_names = saved["config"], saved["label_names"]
    if samples < 1 or clips < 1:
        raise ValueError(f"samples and clips must be >= 1, got {samples} and {clips}.")
    labels = None
    if label_names:
        if label is None:
            print(f"no label given: using {label_names[0]!r} (choose from {label_names})")
            labels = 0
        elif label not in label_names:
            raise ValueError(
                f"unknown label {label!r}; this model knows: {', '.join(label_names)}."
            )
        else:
            labels = label_names.index(label)
    elif label is not None:
        raise ValueError(f"label {label!r}: this model was trained without labels.")

    seed_audio = None
    if seed_wav is not None:
        start, _ = audio.load_audio(seed_wav, config.sample_rate)
        seed_audio = training_data.trim_silence(start, config.silence_threshold)

    from course_lib.wavenet import checkpoints
    from course_lib.wavenet.generation import generate as run_generation

    model = checkpoints.load_checkpoint(logdir, compile=False)
    if guidance is None:  # the trained settings' w; 1 for a model without a "no word" label
        guidance = config.guidance if model.no_label is not None else 1.0
    started = time.perf_counter()
    result = run_generation(
        model,
        samples,
        method=method,
        num_clips=clips,
        labels=labels,
        seed_audio=seed_audio,
        temperature=temperature,
        seed=seed,
        progress=True,
        guidance=guidance,
    )
    seconds = time.perf_counter() - started
    paths = (
        [wav_out_path]
        if clips == 1
        else [
            wav_out_path.with_name(f"{wav_out_path.stem}_{index}{wav_out_path.suffix or '.wav'}")
            for index in range(clips)
        ]
    )
    for path, clip in zip(paths, result.audio, strict=True):
        audio.write_wav(path, clip, config.sample_rate)
    where = paths[0] if len(paths) == 1 else f"{paths[0]} ... {paths[-1]}"
    return (
        f"wrote {clips} x {samples} samples ({samples / config.sample_rate:.2f}"
        f" s at {config.sample_rate} Hz) to {where} in {seconds:.1f} s"
    )
