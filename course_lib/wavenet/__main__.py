"""Command line: ``python -m course_lib.wavenet {train,generate} ...``.

After ibab/tensorflow-wavenet's ``train.py`` and ``generate.py``:

    python -m course_lib.wavenet train --data-dir DIR --logdir DIR [--sample-rate R]
        [--steps N] [--checkpoint-every N] [--restore-from DIR] [--batch-size B] [--quick]
    python -m course_lib.wavenet generate --logdir DIR --samples N --wav-out-path out.wav
        [--temperature T] [--guidance W] [--label WORD] [--seed-wav in.wav] [--seed S]

``--data-dir`` is a folder of audio files (labels from first-level subfolders) or a
dataset converted by ``python -m data_prep`` (it holds ``manifest.json``). A log
directory holds ``wavenet_config.json`` (settings, sample rate, label names) and
``model.keras``, the last checkpoint with its optimizer state: training again resumes
from it, and the step counter continues. Errors print one ``error:`` line, exit 2.

The command line only parses its options and prints a summary line; the work is done by
:func:`course_lib.wavenet.logdir.train_wavenet` (given the preset with the options'
changes, or the restored checkpoint's settings) and
:func:`course_lib.wavenet.logdir.generate_into_wav` (whose arguments the ``generate``
options are named after).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from course_lib.command_line import keyword_arguments, run_command
from course_lib.wavenet.files import CHECKPOINT_NAME
from course_lib.wavenet.logdir import generate_into_wav, read_logdir, train_wavenet
from course_lib.wavenet.settings import WaveNetConfig

SETTING_OPTIONS = {
    "steps": (int, "train until this step"),
    "checkpoint_every": (int, "save a checkpoint every N steps"),
    "batch_size": (int, "crops per training step"),
    "learning_rate": (float, "the optimizer's learning rate"),
}
"""``train``'s options that change one setting of the config (``--checkpoint-every`` sets
``checkpoint_every``): setting name -> (type, help). Each must be positive."""


def _option(setting: str) -> str:
    """The option of a setting: ``checkpoint_every`` -> ``--checkpoint-every``."""
    return "--" + setting.replace("_", "-")


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
    train.add_argument(
        "--restore-from",
        type=Path,
        default=None,
        help="log directory to start from (default: --logdir if it has one)",
    )
    for name, (kind, description) in SETTING_OPTIONS.items():
        train.add_argument(_option(name), type=kind, default=None, help=description)
    train.add_argument(
        "--quick", action="store_true", help="the tiny quick preset (default: COURSE_MODE's preset)"
    )
    train.add_argument("--seed", type=int, default=0, help="weights and crops seed")

    generate = commands.add_parser("generate", help="generate audio from a trained WaveNet")
    generate.add_argument("--logdir", type=Path, required=True)
    generate.add_argument("--samples", type=int, required=True, help="samples to generate")
    generate.add_argument("--wav-out-path", type=Path, required=True)
    generate.add_argument("--temperature", type=float, default=1.0, help="0 = greedy")
    generate.add_argument(
        "--guidance",
        type=float,
        default=None,
        help="classifier-free guidance weight, 1 = none (default: the trained settings')",
    )
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
    changes = {name: getattr(args, name) for name in SETTING_OPTIONS}
    for name, value in changes.items():
        if value is not None and value <= 0:
            raise ValueError(f"{_option(name)} must be positive, got {value}.")
    config = config.replace(**{name: value for name, value in changes.items() if value is not None})
    return config, label_names, restore_dir


def train(args) -> str:
    """The ``train`` command: the preset (or the restored checkpoint's settings) with the
    options' changes; returns a summary line."""
    from course_lib.wavenet import checkpoints

    config, _, restore_dir = _training_setup(args)
    started = time.perf_counter()
    trained = train_wavenet(
        config,
        args.data_dir,
        args.logdir,
        restore_from=restore_dir,
        seed=args.seed,
        sample_rate=args.sample_rate,
    )
    start_step = trained.extras["start_step"]
    if start_step >= config.steps:
        return f"already trained to step {start_step} (steps {config.steps}); nothing to do."
    return (
        f"trained steps {start_step} -> {checkpoints.trained_steps(trained.model)} in "
        f"{time.perf_counter() - started:.1f} s; checkpoint {args.logdir / CHECKPOINT_NAME}"
    )


def generate(args) -> str:
    """The ``generate`` command: its options are :func:`generate_into_wav`'s arguments."""
    return generate_into_wav(**keyword_arguments(args))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(lambda: train(args) if args.command == "train" else generate(args))


if __name__ == "__main__":
    sys.exit(main())
