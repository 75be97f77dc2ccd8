"""Command line: ``python -m course_lib.wavenet {train,generate} ...``.

After ibab/tensorflow-wavenet's ``train.py`` and ``generate.py``:

    python -m course_lib.wavenet train --data-dir DIR --logdir DIR [--sample-rate R]
        [--steps N] [--checkpoint-every N] [--restore-from DIR] [--batch-size B] [--quick]
    python -m course_lib.wavenet generate --logdir DIR --samples N --wav-out-path out.wav
        [--temperature T] [--label WORD] [--seed-wav in.wav] [--seed S]

``--data-dir`` is a folder of audio files (labels from first-level subfolders) or a
dataset converted by ``python -m data_prep`` (it holds ``manifest.json``). A log
directory holds ``wavenet_config.json`` (settings, sample rate, label names) and
``model.keras``, the last checkpoint with its optimizer state: training again resumes
from it, and the step counter continues. Errors print one ``error:`` line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from course_lib import audio, data
from course_lib.wavenet import training_data
from course_lib.wavenet.settings import WaveNetConfig

# Keras and TensorFlow are imported only once the arguments and the data are checked,
# so a mistake costs one line and no TensorFlow start-up.

CONFIG_NAME = "wavenet_config.json"
CHECKPOINT_NAME = "model.keras"  # see course_lib.wavenet.checkpoints


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.wavenet",
        description="Train WaveNet on audio and generate from it.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train (or resume training) a WaveNet")
    train.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="folder of audio files, or a converted dataset (manifest.json)",
    )
    train.add_argument(
        "--logdir", type=Path, required=True, help="where the config and checkpoints are written"
    )
    train.add_argument(
        "--sample-rate",
        type=int,
        default=None,
        help="resample audio to this rate (default: the preset's)",
    )
    train.add_argument("--steps", type=int, default=None, help="train until this step")
    train.add_argument(
        "--checkpoint-every", type=int, default=None, help="save a checkpoint every N steps"
    )
    train.add_argument(
        "--restore-from",
        type=Path,
        default=None,
        help="log directory to start from (default: --logdir if it has one)",
    )
    train.add_argument("--batch-size", type=int, default=None)
    train.add_argument("--learning-rate", type=float, default=None)
    train.add_argument(
        "--quick", action="store_true", help="the tiny quick preset (default: COURSE_MODE's preset)"
    )
    train.add_argument("--seed", type=int, default=0, help="weights and crops seed")

    generate = commands.add_parser("generate", help="generate audio from a trained WaveNet")
    generate.add_argument("--logdir", type=Path, required=True)
    generate.add_argument("--samples", type=int, required=True, help="samples to generate")
    generate.add_argument("--wav-out-path", type=Path, required=True)
    generate.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    generate.add_argument("--label", default=None, help="a label name (conditioned models)")
    generate.add_argument("--seed-wav", type=Path, default=None, help="a clip to continue")
    generate.add_argument("--seed", type=int, default=None, help="sampling seed")
    generate.add_argument(
        "--clips",
        type=int,
        default=1,
        help="clips generated in one batch (out_0.wav, out_1.wav, ...)",
    )
    generate.add_argument("--method", choices=("fast", "naive"), default="fast")
    return parser


# ----------------------------------------------------------------------------- log dir


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


# ----------------------------------------------------------------------------- train


def _training_setup(args):
    """Settings, labels and where to start from, checked before any training."""
    restore_dir = args.restore_from
    if restore_dir is None and (args.logdir / CHECKPOINT_NAME).is_file():
        restore_dir = args.logdir
    if restore_dir is not None:
        saved = read_logdir(restore_dir)
        config, label_names = saved["config"], saved["label_names"]
        if args.sample_rate and args.sample_rate != config.sample_rate:
            raise ValueError(
                f"--sample-rate {args.sample_rate} differs from the checkpoint's "
                f"{config.sample_rate} Hz in {restore_dir}."
            )
    else:
        config = WaveNetConfig.quick() if args.quick else WaveNetConfig.for_mode()
        label_names = None
        if args.sample_rate:
            config = config.replace(sample_rate=args.sample_rate)
    changes = {
        "steps": args.steps,
        "checkpoint_every": args.checkpoint_every,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
    }
    for name, value in changes.items():
        if value is not None and value <= 0:
            raise ValueError(f"--{name.replace('_', '-')} must be positive, got {value}.")
    config = config.replace(**{name: value for name, value in changes.items() if value is not None})
    return config, label_names, restore_dir


def _training_data(args, config, label_names):
    """The checked data source (a corpus or a converted folder), the config with its
    sample rate, the label names and a summary line."""
    folder = args.data_dir
    if not folder.is_dir():
        raise NotADirectoryError(f"--data-dir {folder} is not a folder.")
    if (folder / data.MANIFEST_NAME).is_file():
        manifest = data.read_manifest(folder)
        if not manifest.splits.get("train", {}).get("examples"):
            raise ValueError(f"no usable audio in {folder}: its train split is empty.")
        if args.sample_rate and args.sample_rate != manifest.sample_rate:
            raise ValueError(
                f"{folder} was converted at {manifest.sample_rate} Hz, not "
                f"{args.sample_rate}: drop --sample-rate or convert again."
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
        found = []  # one label: nothing to condition on
    if label_names is not None and list(label_names) != list(found):
        raise ValueError(
            f"the checkpoint was trained on labels {label_names}, but {folder} has "
            f"{found or 'none'}; use a new --logdir for new labels."
        )
    return source, config, found, summary


def _crop_batches(source, config, with_labels: bool, seed: int):
    """Training batches from a corpus or a converted dataset folder."""
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
        source, silence_threshold=config.silence_threshold, **common
    )


def train(args) -> str:
    """Train until ``config.steps``, saving a checkpoint every ``checkpoint_every`` steps."""
    config, label_names, restore_dir = _training_setup(args)
    source, config, label_names, summary = _training_data(args, config, label_names)
    print(summary)

    from course_lib import config as course_config
    from course_lib import training
    from course_lib.wavenet import checkpoints
    from course_lib.wavenet.model import build_wavenet

    course_config.set_seed(args.seed)
    with course_config.strategy().scope():
        if restore_dir is not None:
            model = checkpoints.load_checkpoint(restore_dir)
        else:
            model = build_wavenet(config, num_classes=len(label_names))
    start_step = checkpoints.trained_steps(model)
    if restore_dir is not None:
        print(f"resuming from step {start_step} ({checkpoints.checkpoint_path(restore_dir)})")
    write_logdir_config(args.logdir, config, label_names)
    if start_step >= config.steps:
        return f"already trained to step {start_step} (--steps {config.steps}); nothing to do."
    print(
        f"training: receptive field {model.receptive_field} samples, "
        f"{model.count_params():,} weights, steps {start_step} -> {config.steps}"
    )
    started = time.perf_counter()
    remaining = config.steps - start_step
    # A new crop seed per start step, so a resumed run does not replay the same crops.
    dataset = _crop_batches(source, config, bool(label_names), seed=args.seed + start_step)
    model.fit(
        dataset,
        epochs=math.ceil(remaining / config.checkpoint_every),
        steps_per_epoch=config.checkpoint_every,
        shuffle=False,
        verbose=0,
        callbacks=[checkpoints.StepCheckpoints(args.logdir, config.steps), training.StopOnNaN()],
    )
    final_step = checkpoints.trained_steps(model)
    return (
        f"trained steps {start_step} -> {final_step} in {time.perf_counter() - started:.1f} s;"
        f" checkpoint {args.logdir / CHECKPOINT_NAME}"
    )


# ----------------------------------------------------------------------------- generate


def generate(args) -> str:
    """Generate ``--samples`` samples and write them as WAV file(s)."""
    saved = read_logdir(args.logdir)
    config, label_names = saved["config"], saved["label_names"]
    if args.samples < 1 or args.clips < 1:
        raise ValueError(
            f"--samples and --clips must be >= 1, got {args.samples} and {args.clips}."
        )
    labels = None
    if label_names:
        if args.label is None:
            print(f"no --label given: using {label_names[0]!r} (choose from {label_names})")
            labels = 0
        elif args.label not in label_names:
            raise ValueError(
                f"unknown label {args.label!r}; this model knows: {', '.join(label_names)}."
            )
        else:
            labels = label_names.index(args.label)
    elif args.label is not None:
        raise ValueError(f"--label {args.label!r}: this model was trained without labels.")

    seed_audio = None
    if args.seed_wav is not None:
        samples, _ = audio.load_audio(args.seed_wav, config.sample_rate)
        seed_audio = training_data.trim_silence(samples, config.silence_threshold)

    from course_lib.wavenet import checkpoints
    from course_lib.wavenet.generation import generate as run_generation

    model = checkpoints.load_checkpoint(args.logdir, compile=False)
    started = time.perf_counter()
    result = run_generation(
        model,
        args.samples,
        method=args.method,
        num_clips=args.clips,
        labels=labels,
        seed_audio=seed_audio,
        temperature=args.temperature,
        seed=args.seed,
        progress=True,
    )
    seconds = time.perf_counter() - started
    paths = (
        [args.wav_out_path]
        if args.clips == 1
        else [
            args.wav_out_path.with_name(
                f"{args.wav_out_path.stem}_{index}{args.wav_out_path.suffix or '.wav'}"
            )
            for index in range(args.clips)
        ]
    )
    for path, clip in zip(paths, result.audio, strict=True):
        audio.write_wav(path, clip, config.sample_rate)
    where = paths[0] if len(paths) == 1 else f"{paths[0]} ... {paths[-1]}"
    return (
        f"wrote {args.clips} x {args.samples} samples ({args.samples / config.sample_rate:.2f}"
        f" s at {config.sample_rate} Hz) to {where} in {seconds:.1f} s"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        report = train(args) if args.command == "train" else generate(args)
    except (ValueError, FileNotFoundError, NotADirectoryError) as error:
        message = " ".join(str(error).split())  # one line
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
