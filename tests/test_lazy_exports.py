"""course_lib.lazy_exports: names load their submodule on first use; unknown names fail."""

import subprocess
import sys

import pytest

from course_lib import vq


def test_exported_names_resolve_and_unknown_names_fail():
    assert vq.VQConfig.__module__ == "course_lib.vq.settings"
    assert "VQConfig" in dir(vq) and vq.__all__ == sorted(vq.__all__)
    with pytest.raises(AttributeError, match=r"module 'course_lib\.vq' has no attribute 'nope'"):
        vq.nope  # noqa: B018


def test_settings_load_without_tensorflow():
    code = (
        "import sys; from course_lib.wavenet import WaveNetConfig; "
        "from course_lib.diffusion import DiffusionConfig; "
        "print(WaveNetConfig.quick().receptive_field, 'tensorflow' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.split() == ["65", "False"], result.stderr
