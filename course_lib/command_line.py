"""The error convention of the kit's commands: a bad argument is one ``error:`` line, exit 2.

Each command (``python -m course_lib.inpainting``, ``python -m course_lib.wavenet``,
``python -m data_prep``) parses its arguments, then hands the work to :func:`run_command`,
which prints the summary the work returns and gives the exit code:

- 0: the work finished; its summary is on stdout;
- 2: it raised one of the expected errors (a bad setting, a missing file): the message,
  on one line, after ``error:`` on stderr, and no traceback;

anything else is a bug and propagates with its traceback.

Where a command's options are named after the arguments of the function it calls (each
option's ``dest``), :func:`keyword_arguments` passes them on in one go.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

EXPECTED_ERRORS: tuple[type[Exception], ...] = (ValueError, FileNotFoundError, NotADirectoryError)
"""What a command reports as ``error: ...``: the errors its checks raise for bad input."""


def run_command(
    work: Callable[[], object], expected: tuple[type[Exception], ...] = EXPECTED_ERRORS
) -> int:
    """Call ``work()``, print what it returns, and return the exit code.

    Args:
        work: the command's work, taking no arguments (a ``lambda`` over the parsed
            arguments); what it returns is printed with ``print``.
        expected: the exception types reported as one ``error:`` line (exit code 2).

    Returns:
        0, or 2 after printing ``error: <message>`` (whitespace collapsed to one line)
        on stderr.
    """
    try:
        summary = work()
    except expected as error:
        message = " ".join(str(error).split())  # one line
        print(f"error: {message}", file=sys.stderr)
        return 2
    print(summary)
    return 0


def keyword_arguments(args: argparse.Namespace) -> dict[str, object]:
    """The parsed options as keyword arguments, without ``command`` (the subcommand's name).

    For a function whose arguments the options are named after: ``--wav-out-path`` (dest
    ``wav_out_path``) gives ``wav_out_path=...``.
    """
    return {name: value for name, value in vars(args).items() if name != "command"}
