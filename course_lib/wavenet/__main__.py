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

The command line only parses its options; the work is done by
:func:`course_lib.wavenet.logdir.train_into_logdir` (given the preset with the options'
changes, or the restored checkpoint's settings) and
:func:`course_lib.wavenet.logdir.generate_into_wav`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from course_lib.command_line import run_command
from course_lib.wavenet.files import CHECKPOINT_NAME
from course_lib.wavenet.logdir import generate_into_wav, read_logdir, train_into_logdir
from course_lib.wavenet.settings import WaveNetConfig


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


def train(args) -> str:
    """The ``train`` command: the preset (or the restored checkpoint's settings) with the
    options' changes."""
    config, _, restore_dir = _training_setup(args)
    return train_into_logdir(
        config,
        args.data_dir,
        args.logdir,
        restore_from=restore_dir,
        seed=args.seed,
        sample_rate=args.sample_rate,
    )


def generate(args) -> str:
    """The ``generate`` command."""
    return generate_into_wav(
        args.logdir,
        args.samples,
        args.wav_out_path,
        clips=args.clips,
        label=args.label,
        seed_wav=args.seed_wav,
        temperature=args.temperature,
        seed=args.seed,
        method=args.method,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: train(args) if args.command == "train" else generate(args))


if __name__ == "__main__":
    sys.exit(main())
