"""Command line for the "blur" effect: resample a time-frequency region of a sound.

    python -m course_lib.inpainting --input in.wav --output out.wav --time 0.5:1.5 \\
        --freq 200:2000 [--model DIR] [--temperature T] [--sweeps N] [--seed S] \\
        [--iterations N]

``--time`` is in seconds and ``--freq`` in Hz; ``--model`` is an effect folder (default:
the notebook's ``checkpoints/vq_inpainting``). The command line only parses its arguments
(named after :func:`course_lib.inpainting.effect.inpaint_file`'s) and calls that
function, which does the work and describes the effect folder.

A bad argument prints one ``error:`` line and exits 2. TensorFlow is imported only once
the arguments, the input file and the effect folder have been checked.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from course_lib.command_line import keyword_arguments, run_command
from course_lib.inpainting.effect import inpaint_file


class _OneLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one ``error:`` line (exit 2), no usage."""

    def error(self, message: str):
        self.exit(2, f"error: {message}\n")


def parse_range(text: str, unit: str) -> tuple[float, float]:
    """``"A:B"`` to ``(A, B)`` with ``0 <= A < B``.

    Raises:
        argparse.ArgumentTypeError: anything else.
    """
    parts = text.split(":")
    try:
        start, stop = (float(part) for part in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a range START:STOP in {unit} (for example 0.5:1.5)"
        ) from None
    if not 0 <= start < stop or stop == float("inf"):
        raise argparse.ArgumentTypeError(
            f"range {text!r} must satisfy 0 <= START < STOP (in {unit})"
        )
    return start, stop


def _seconds(text: str) -> tuple[float, float]:
    return parse_range(text, "seconds")


def _hertz(text: str) -> tuple[float, float]:
    return parse_range(text, "Hz")


def build_parser() -> argparse.ArgumentParser:
    parser = _OneLineParser(
        prog="python -m course_lib.inpainting",
        description="Resample a time-frequency region of a sound with a VQ-VAE and Naive Bayes.",
    )
    # Each option's dest is the name of the inpaint_file argument it gives.
    parser.add_argument(
        "--input", dest="input_path", type=Path, required=True, help="the sound to transform"
    )
    parser.add_argument(
        "--output", dest="output_path", type=Path, required=True, help="the WAV file to write"
    )
    parser.add_argument(
        "--time", dest="time_range", type=_seconds, required=True, help="START:STOP in seconds"
    )
    parser.add_argument(
        "--freq", dest="freq_range", type=_hertz, required=True, help="LOW:HIGH in Hz"
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="effect folder (default: the notebook's)"
    )
    parser.add_argument("--temperature", type=float, default=None, help="0 = most likely codes")
    parser.add_argument("--sweeps", type=int, default=None, help="Gibbs sweeps over the region")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument(
        "--iterations", type=int, default=None, help="Griffin-Lim iterations (default: saved)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command line: parse the arguments, call ``inpaint_file``, print its summary
    (or one ``error:`` line and return 2)."""
    args = build_parser().parse_args(argv)
    return run_command(lambda: inpaint_file(**keyword_arguments(args)))


if __name__ == "__main__":
    sys.exit(main())
