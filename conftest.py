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
