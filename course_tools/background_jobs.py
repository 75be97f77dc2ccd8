"""The long jobs that run in the background of a test session.

Six jobs take minutes (mostly single-threaded Python and TensorFlow work, or pip) in
processes of their own, while the test session would sit waiting for them:

- :data:`JUDGE` (``tests/test_judge.py``): the quick judge trained where the session's
  tests and notebooks restore it, by ``python tests/test_judge.py --all FOLDER``. It runs
  at the session's priority from its start, beside the session's first tests: trained
  in the session instead, it held up the session's own chain of tests for two to three
  minutes;
- :data:`NOTEBOOKS` (``tests/test_rehearsal.py``): every notebook run with
  ``COURSE_MODE=rehearsal`` (the full presets' shapes, tiny counts, tiny fixtures), by
  ``python -m course_tools.run_course --mode rehearsal``, which writes each notebook's
  record to ``runs.json``;
- :data:`FULL_PRESETS` (``tests/test_rehearsal.py``): every full preset built with XLA,
  trained one step and sampled, each in a process of its own, by ``python
  tests/test_rehearsal.py --all FOLDER``;
- :data:`MEMORY` (``tests/test_memory.py``): the peak memory of each streamed full-mode
  path on N and 4N clips, each in a fresh interpreter, by ``python tests/test_memory.py
  --all FOLDER``;
- :data:`COLAB_INSTALL` (``tests/test_colab_install.py``): pip resolving the requirements
  on Colab's pins (``--dry-run``), mostly waiting on the package registry;
- :data:`CONDITIONING` (``tests/test_conditioning.py``): a diffusion model trained on two
  words and sampled, by ``python tests/test_conditioning.py --all FOLDER`` (the test then
  judges the clips it saved).

The script jobs write each record to ``FOLDER/<name>.json`` (:func:`write_record`). So that
the session goes on meanwhile, the root ``conftest.py`` starts each job (:func:`start`) as
soon as the session has collected a test that reads it (a test using the job's
``fixture_name``); those tests run near the end and :func:`wait_for` their records, except
the judge's readers, which run in their place (the judge is trained by then) and before
which the notebooks wait for it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from course_tools import run_course

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_SECONDS = 2400  # each job; the notebooks take about ten minutes on two busy cores
# The jobs yield the cores to the test session (``nice``): the session's own tests are the
# longest chain of a run, and a job's results are read only near its end. Where Linux groups
# each session's processes (``/proc/sys/kernel/sched_autogroup_enabled``), a nice value
# ranks a process only within its session, and a job starts a session of its own (as
# every notebook kernel does): ``.ci/run`` turns the grouping off for its run. In the
# fresh-clone checks of CI the machine was 99% busy until the session's own chain (its
# tests, then the quick notebooks) ran alone at the end: the chain, not the total work,
# set the run's length, so the jobs yield it more (nice 15 and 12, not 10 and 5).
NICENESS = 15
# The notebooks' rehearsal is the longest of the jobs (seven kernels one after another,
# about 500 s of CPU), so it goes before the others: ended last, it left a core idle.
NOTEBOOKS_NICENESS = 12


@dataclasses.dataclass(frozen=True)
class Job:
    """A rehearsal that runs beside the test session.

    Attributes:
        fixture_name: the fixture of the tests that read it: collecting one starts it.
        folder_name: its results folder under the temporary folder (emptied at each start).
        command: its command line, given its results folder.
        niceness: how far below the session's priority it runs (``nice -n``).
        readers_last: whether the tests that read it run after the others, near the end
            of the session (the rehearsals' checks), or in their place (the judge's).
        key: where ``conftest.py`` keeps its process in the session's ``config.stash``.
    """

    fixture_name: str
    folder_name: str
    command: Callable[[Path], list[str]]
    niceness: int = NICENESS
    readers_last: bool = True
    key: pytest.StashKey = dataclasses.field(default_factory=pytest.StashKey, compare=False)

    def results_folder(self) -> Path:
        return Path(tempfile.gettempdir()) / self.folder_name


def data_folder() -> Path:
    """The notebooks' rehearsal's ``COURSE_DATA_DIR``: emptied at each start, so every
    line that trains in full mode trains there too."""
    return Path(tempfile.gettempdir()) / "course_kit_rehearsal_data"


NOTEBOOKS = Job(
    "notebook_rehearsal",
    "course_kit_rehearsal",
    lambda folder: [
        sys.executable,
        *("-m", "course_tools.run_course", "--mode", "rehearsal", "--no-screenshot"),
        *("--out", str(folder), "--data-dir", str(data_folder())),
    ],
    niceness=NOTEBOOKS_NICENESS,
)


def script_job(fixture_name: str, folder_name: str, script: str, **options) -> Job:
    """A job that runs ``python tests/<script> --all FOLDER`` (``options``: :class:`Job`'s)."""
    return Job(
        fixture_name,
        folder_name,
        lambda folder: [sys.executable, str(REPO / "tests" / script), "--all", str(folder)],
        **options,
    )


JUDGE = script_job(
    "quick_judge", "course_kit_judge", "test_judge.py", niceness=0, readers_last=False
)


FULL_PRESETS = script_job("full_preset_rehearsal", "course_kit_full_presets", "test_rehearsal.py")
MEMORY = script_job("memory_measurements", "course_kit_memory", "test_memory.py")
COLAB_INSTALL = script_job("colab_resolution", "course_kit_colab_install", "test_colab_install.py")
CONDITIONING = script_job("conditioning_run", "course_kit_conditioning", "test_conditioning.py")
JOBS = (JUDGE, NOTEBOOKS, FULL_PRESETS, MEMORY, COLAB_INSTALL, CONDITIONING)


RESULT = "result"  # the record's name, for a job that writes one (the judge, conditioning)


def results_folder() -> Path:
    """Where this session's notebook rehearsal writes its executed notebooks and
    ``runs.json`` (under the temporary folder, like the quick run's executed notebooks)."""
    return NOTEBOOKS.results_folder()


def start(job: Job = NOTEBOOKS) -> subprocess.Popen:
    """Start ``job`` in a background process and return it; its output goes to
    ``job.results_folder() / "log.txt"``."""
    folders = [job.results_folder()] + ([data_folder()] if job is NOTEBOOKS else [])
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    path = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    log = open(job.results_folder() / "log.txt", "w")  # noqa: SIM115 (the process keeps it)
    nice = shutil.which("nice")  # without it, the job runs at the session's priority
    lower = [nice, "-n", str(job.niceness)] if nice else []
    return subprocess.Popen(
        [*lower, *job.command(job.results_folder())],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": path},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # stop() ends its kernels and child processes with it
    )


def session_job(config: pytest.Config, job: Job) -> tuple[subprocess.Popen, float]:
    """``job``'s process in this session (started by ``conftest.py`` when its tests were
    collected; here when it was not) and the ``time.monotonic()`` deadline of a wait."""
    process = config.stash.get(job.key, None)
    if process is None:
        process = start(job)
        config.stash[job.key] = process
    return process, time.monotonic() + TIMEOUT_SECONDS


def stop(process: subprocess.Popen) -> None:
    """End a rehearsal still running, its kernels and child processes included."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def wait_for(
    process: subprocess.Popen, read: Callable[[], dict | None], deadline: float
) -> dict | None:
    """``read()`` (a record the background job writes) once it is there; None when the job
    ended or ``deadline`` (``time.monotonic()``) passed without it."""
    while True:
        record = read()
        if record is not None:
            return record
        if process.poll() is not None or time.monotonic() > deadline:
            return read()
        time.sleep(2)


def notebook_record(notebook: str) -> dict | None:
    """The notebook rehearsal's record of ``notebook`` (a file name), if written yet."""
    return run_course.read_runs(results_folder()).get(notebook)


def write_record(folder: Path, name: str, record: dict) -> None:
    """Write a job's record of ``name`` (at once: a reader never sees half of it)."""
    partial = folder / f"{name}.json.partial"
    partial.write_text(json.dumps(record))
    partial.replace(folder / f"{name}.json")


def read_record(job: Job, name: str) -> dict | None:
    """``job``'s record of ``name`` (see :func:`write_record`), if written yet."""
    try:
        return json.loads((job.results_folder() / f"{name}.json").read_text())
    except FileNotFoundError:
        return None


def wait_for_record(config: pytest.Config, job: Job, name: str) -> dict:
    """``job``'s record of ``name``, once written; fails the test, with the end of the
    job's log, when the job ends or times out without it."""
    process, deadline = session_job(config, job)
    record = wait_for(process, lambda: read_record(job, name), deadline)
    if record is None:
        pytest.fail(f"the background job ended without a record of {name}:\n{log_tail(job)}")
    return record


def run_one_record_job(work: Callable[[Path], dict]) -> None:
    """The command line of a job that writes one record (the judge's, conditioning's):
    ``python tests/<script> --all FOLDER`` runs ``work(FOLDER)`` and writes what it returns,
    or the error it raised, as the record :data:`RESULT` (read by :func:`wait_for_result`)."""
    if sys.argv[1:2] != ["--all"] or len(sys.argv) != 3:
        sys.exit(f"usage: python {sys.argv[0]} --all FOLDER")
    folder = Path(sys.argv[2])
    try:
        record = {**work(folder), "error": None}
    except Exception as error:  # the tests that read it report it, with the job's log
        record = {"error": f"{type(error).__name__}: {error}"}
    write_record(folder, RESULT, record)


def wait_for_result(config: pytest.Config, job: Job) -> dict:
    """The record of a job run by :func:`run_one_record_job`, once written; fails the test,
    with the end of the job's log, when the job ended without it or with an error."""
    record = wait_for_record(config, job, RESULT)
    if record.get("error") is not None:
        pytest.fail(f"{record['error']}\n{log_tail(job)}")
    return record


def log_tail(job: Job = NOTEBOOKS, lines: int = 40) -> str:
    """The last lines ``job`` printed."""
    try:
        text = (job.results_folder() / "log.txt").read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])
