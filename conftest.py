"""Root pytest configuration: tests and notebooks run in quick mode, offline.

Set here (before collection) so the notebook kernels that nbmake starts inherit it.
"""

import os
import tempfile

import course_lib  # noqa: F401  (sets TensorFlow's log level before anything imports it)

os.environ.setdefault("COURSE_MODE", "quick")
# Notebooks and tests share one cache of fixture data per run, outside the work tree.
os.environ.setdefault(
    "COURSE_DATA_DIR", os.path.join(tempfile.gettempdir(), "course_kit_test_data")
)
os.environ.setdefault(
    "COURSE_OUTPUT_DIR", os.path.join(tempfile.gettempdir(), "course_kit_test_outputs")
)

# nbmake runs notebooks in this process: avoid nbclient's stall on a missed kernel reply.
from course_tools.kernel_messages import poll_kernel_replies_in_slices

poll_kernel_replies_in_slices()

# Executed notebooks are kept for tests/test_executed_notebooks.py, which runs last.
from course_tools import background_jobs  # noqa: E402
from course_tools.executed_notebooks import executed_folder, keep_executed_notebooks  # noqa: E402


def pytest_configure(config):
    if config.getoption("nbmake", default=False):
        keep_executed_notebooks(executed_folder())


def _reads(item, job: background_jobs.Job) -> bool:
    return job.fixture_name in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items):
    """The rehearsals' checks run after the quick notebooks (the rehearsals run beside
    them), and the tests that read executed notebooks run last."""
    late_jobs = [job for job in background_jobs.JOBS if job.readers_last]
    items.sort(
        key=lambda item: (
            2
            if item.path.name == "test_executed_notebooks.py"
            else int(any(_reads(item, job) for job in late_jobs))
        )
    )


def pytest_collection_finish(session):
    """Start each full-size rehearsal (the notebooks', the full presets') in the background
    as soon as a selected test reads it (``course_tools.background_jobs``)."""
    for job in background_jobs.JOBS:
        if any(_reads(item, job) for item in session.items):
            session.config.stash[job.key] = background_jobs.start(job)


def pytest_runtest_setup(item):
    """A notebook restores the quick judge, which the background job trains when this
    session runs it: the notebook waits for it rather than train it a second time in the
    same folder."""
    job = background_jobs.JUDGE
    if item.path.suffix == ".ipynb" and item.config.stash.get(job.key, None) is not None:
        background_jobs.wait_for_record(item.config, job, background_jobs.RESULT)


def pytest_unconfigure(config):
    for job in background_jobs.JOBS:
        process = config.stash.get(job.key, None)
        if process is not None:
            background_jobs.stop(process)
