"""The notebooks' full-size rehearsal, run in the background of a test session.

``tests/test_rehearsal.py`` checks every notebook run with ``COURSE_MODE=rehearsal``
(the full presets' shapes, tiny counts, tiny fixtures, on the CPU). Those runs take
minutes, mostly in single-threaded Python and TensorFlow work, so the root
``conftest.py`` starts them (:func:`start`) as soon as the session has collected a test
that needs them, in a process of their own (``python -m course_tools.run_course --mode
rehearsal``) beside the other tests; the tests that need them run near the end and
:func:`wait_for` each notebook's record in ``runs.json``.

The data folder starts empty, so every line that trains in full mode trains here too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from course_tools import run_course

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 2400  # the whole rehearsal; about ten minutes on two busy cores
PROCESS_KEY = pytest.StashKey[subprocess.Popen]()
"""Where ``conftest.py`` keeps the background process in the session's ``config.stash``."""
FIXTURE_NAME = "notebook_rehearsal"
"""The fixture of the tests that read the rehearsal: collecting one starts it."""


def results_folder() -> Path:
    """Where this session's rehearsal writes its executed notebooks and ``runs.json``
    (under the temporary folder, like the quick run's executed notebooks)."""
    return Path(tempfile.gettempdir()) / "course_kit_rehearsal"


def data_folder() -> Path:
    """The rehearsal's ``COURSE_DATA_DIR``: emptied at each start."""
    return Path(tempfile.gettempdir()) / "course_kit_rehearsal_data"


def start() -> subprocess.Popen:
    """Start the rehearsal of every notebook in a background process and return it.

    Its output (one line per notebook) goes to ``results_folder() / "log.txt"``.
    """
    for folder in (results_folder(), data_folder()):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    command = [
        sys.executable,
        "-m",
        "course_tools.run_course",
        "--mode",
        "rehearsal",
        "--out",
        str(results_folder()),
        "--data-dir",
        str(data_folder()),
        "--no-screenshot",
    ]
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    log = open(results_folder() / "log.txt", "w")  # noqa: SIM115 (the process keeps it)
    return subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # stop() ends its notebook kernels with it
    )


def stop(process: subprocess.Popen) -> None:
    """End a rehearsal still running, its notebook kernels included."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(process: subprocess.Popen, notebook: str, deadline: float) -> dict | None:
    """The record of ``notebook`` (a file name) in ``runs.json`` once the background run
    has written it; None when the run ended or ``deadline`` (``time.monotonic()``)
    passed without it."""
    while True:
        record = run_course.read_runs(results_folder()).get(notebook)
        if record is not None:
            return record
        if process.poll() is not None or time.monotonic() > deadline:
            return run_course.read_runs(results_folder()).get(notebook)
        time.sleep(2)


def log_tail(lines: int = 40) -> str:
    """The last lines the background run printed."""
    try:
        text = (results_folder() / "log.txt").read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
