"""``import course_lib`` sets TensorFlow's environment before TensorFlow starts."""

import os
import subprocess
import sys
from importlib.metadata import version

import pytest

from course_tools.executed_notebooks import CPP_LOG_LINE

# TensorFlow 2.21 writes its first log lines through absl before it reads
# TF_CPP_MIN_LOG_LEVEL ("All log messages before absl::InitializeLog() is called are
# written to STDERR"); Colab's 2.20, where students run the notebooks, honours it.
TF_VERSION = tuple(int(part) for part in version("tensorflow").split(".")[:2])


TOUCH_TENSORFLOW = """
import course_lib
import tensorflow as tf
tf.config.list_physical_devices("GPU")
print(list(tf.data.TFRecordDataset([])))
"""


def run_clean(code: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env={**clean, **env}
    )


def test_the_pattern_finds_tensorflows_log_lines():
    shown = run_clean(TOUCH_TENSORFLOW.replace("import course_lib\n", ""))
    assert CPP_LOG_LINE.search(shown.stderr), shown.stderr


@pytest.mark.xfail(
    TF_VERSION >= (2, 21), strict=True, reason="TensorFlow 2.21 logs before reading the level"
)
def test_importing_course_lib_first_keeps_tensorflows_log_lines_out():
    run = run_clean(TOUCH_TENSORFLOW)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"
    assert not CPP_LOG_LINE.search(run.stderr), run.stderr


def test_a_log_level_of_ones_own_is_kept():
    run = run_clean(
        "import os, course_lib; print(os.environ['TF_CPP_MIN_LOG_LEVEL'])", TF_CPP_MIN_LOG_LEVEL="0"
    )
    assert run.stdout.strip() == "0"
