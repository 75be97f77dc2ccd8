"""Command line: ``python -m data_prep {fixtures,download,speech-commands,nsynth,folder} ...``.

Every command prints a summary and exits 0 when it finished (bad files are skipped and
reported); an unusable argument or a source without audio prints one ``error:`` line
and exits 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from course_lib.command_line import EXPECTED_ERRORS, keyword_arguments, run_command

SAMPLE_RATES = (16000, 8000, 4000)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m data_prep", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    fixtures = commands.add_parser("fixtures", help="generate offline fixture datasets")
    fixtures.add_argument("--out", type=Path, required=True)
    fixtures.add_argument("--kind", choices=("speech", "notes", "music", "all"), default="all")
    fixtures.add_argument(
        "--per-class", type=int, default=None, help="clips per word / note family / genre"
    )
    fixtures.add_argument("--seed", type=int, default=0)
    fixtures.add_argument(
        "--music-seconds", type=float, default=None, help="length of each music clip (6 s)"
    )

    download = commands.add_parser("download", help="download a published dataset archive")
    download.add_argument("dataset", choices=("speech-commands", "nsynth"))
    download.add_argument("--out", type=Path, required=True)

    speech = commands.add_parser(
        "speech-commands", help="convert Speech Commands (archive or folder)"
    )
    speech.add_argument("--source", type=Path, required=True)
    speech.add_argument("--out", type=Path, required=True)
    speech.add_argument("--sample-rate", type=int, choices=SAMPLE_RATES, default=16000)
    speech.add_argument("--words", default="all", help="all, sc09, or a comma-separated list")
    speech.add_argument("--workers", type=int, default=None)

    nsynth = commands.add_parser("nsynth", help="convert NSynth json/wav folders")
    nsynth.add_argument("--source", type=Path, required=True)
    nsynth.add_argument("--out", type=Path, required=True)
    nsynth.add_argument("--sample-rate", type=int, default=16000)
    nsynth.add_argument("--max-per-family", type=int, default=None)
    nsynth.add_argument("--workers", type=int, default=None)

    folder = commands.add_parser("folder", help="convert any folder of audio files")
    folder.add_argument("--source", type=Path, required=True)
    folder.add_argument("--out", type=Path, required=True)
    folder.add_argument("--sample-rate", type=int, default=16000)
    folder.add_argument("--clip-seconds", type=float, default=1.0)
    folder.add_argument("--workers", type=int, default=None)
    return parser


def run(args: argparse.Namespace) -> object:
    """Run one parsed command and return its report (printed by :func:`main`).

    The options of ``fixtures`` and of the converters are named after the arguments of
    the function the command calls, and are passed on as they are.
    """
    options = keyword_arguments(args)
    if args.command == "fixtures":
        from data_prep.fixtures import make_fixtures

        return make_fixtures(**options)
    if args.command == "download":
        from data_prep.download import download_dataset

        return f"{args.dataset} is ready in {download_dataset(args.dataset, args.out)}"
    if args.command == "speech-commands":
        from data_prep.speech_commands import convert_speech_commands

        return convert_speech_commands(**options)
    if args.command == "nsynth":
        from data_prep.nsynth import convert_nsynth

        return convert_nsynth(**options)
    from data_prep.folder import convert_folder

    return convert_folder(**options)


def main(argv: Sequence[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep the summary readable
    args = build_parser().parse_args(argv)
    start = time.perf_counter()
    return run_command(
        lambda: f"{run(args)}\ndone in {time.perf_counter() - start:.1f} s",
        (*EXPECTED_ERRORS, ConnectionError),  # ConnectionError: a download that cannot start
    )


if __name__ == "__main__":
    sys.exit(main())
