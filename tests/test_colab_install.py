"""The kit installs on Colab's GPU runtime and replaces none of its preinstalled packages.

`.ci/colab-gpu.txt` holds the versions Colab's GPU runtime ships (googlecolab/backend-info).
The notebooks' setup cell installs the kit with the runtime's own versions as constraints;
this resolves `requirements.txt` the same way, with `pip install --dry-run --report`, in a
subprocess that asks the package registry (the only network CI has; the tests' socket
guard covers this process, not pip's), in the background of the test session (started by
the root ``conftest.py``: ``course_tools.background_jobs.COLAB_INSTALL``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from course_tools import background_jobs

ROOT = Path(__file__).resolve().parents[1]
PINS = ROOT / ".ci" / "colab-gpu.txt"


def normalized(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(path: Path) -> dict[str, str]:
    """``{normalized name: version}`` from a ``name==version`` file (comments skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==", 1)
            pins[normalized(name)] = version.strip()
    return pins


def replaced_packages(report: dict, pins: dict[str, str]) -> list[str]:
    """The pinned packages that a pip ``--report`` would install at another version."""
    replaced = []
    for item in report["install"]:
        name, version = item["metadata"]["name"], item["metadata"]["version"]
        pinned = pins.get(normalized(name))
        if pinned is not None and pinned != version:
            replaced.append(f"{name} {pinned} -> {version}")
    return sorted(replaced)


def conflicting_pins(pip_output: str) -> list[str]:
    """The pins pip names when it cannot resolve without changing them."""
    return sorted(set(re.findall(r"The user requested \(constraint\) (\S+)", pip_output)))


def test_the_pin_file_is_colabs_and_says_where_it_comes_from():
    header = PINS.read_text().splitlines()[:3]
    assert any("googlecolab/backend-info" in line for line in header)
    assert any(re.search(r"20\d\d-\d\d-\d\d", line) for line in header)
    pins = read_pins(PINS)
    assert pins["tensorflow"] == "2.20.0" and pins["ipywidgets"].startswith("7.")
    assert len(pins) > 500


def test_replaced_packages_names_each_change():
    report = {
        "install": [
            {"metadata": {"name": "psutil", "version": "7.0.0"}},
            {"metadata": {"name": "Scikit_Learn", "version": "1.6.1"}},
            {"metadata": {"name": "espeakng-loader", "version": "0.2.4"}},
        ]
    }
    pins = {"psutil": "5.9.5", "scikit-learn": "1.6.1"}
    assert replaced_packages(report, pins) == ["psutil 5.9.5 -> 7.0.0"]


def test_conflicting_pins_are_read_from_pips_message():
    message = (
        "codecarbon 3.0.0 depends on psutil>=6.0.0\n"
        "    The user requested (constraint) psutil==5.9.5\n"
        "    The user requested (constraint) psutil==5.9.5\n"
    )
    assert conflicting_pins(message) == ["psutil==5.9.5"]


def resolve_on_colabs_pins(folder: Path) -> None:
    """The background job (``course_tools.background_jobs.COLAB_INSTALL``): pip resolves
    the requirements on Colab's pins; its exit code, error output and report go to
    ``folder / "pip.json"``. (Mostly waiting on the registry: it runs beside the tests.)"""
    report_path = folder / "report.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed"]
    command += ["--quiet", "--report", str(report_path), "-r", str(ROOT / "requirements.txt")]
    command += ["-c", str(PINS)]
    run = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=600)
    report = json.loads(report_path.read_text()) if run.returncode == 0 else None
    record = {"returncode": run.returncode, "stderr": run.stderr[-6000:], "report": report}
    background_jobs.write_record(folder, "pip", record)


@pytest.fixture(scope="session")
def colab_resolution(request) -> pytest.Config:
    """The session's config, once :func:`resolve_on_colabs_pins` runs in the background."""
    background_jobs.session_job(request.config, background_jobs.COLAB_INSTALL)
    return request.config


def test_the_requirements_install_on_colab_and_replace_nothing(colab_resolution):
    run = background_jobs.wait_for_record(colab_resolution, background_jobs.COLAB_INSTALL, "pip")
    if run["returncode"] != 0:
        if "ResolutionImpossible" in run["stderr"] or conflicting_pins(run["stderr"]):
            pytest.fail(
                "requirements.txt cannot install without replacing Colab's "
                + ", ".join(conflicting_pins(run["stderr"]) or ["(see pip's message)"])
                + "\n"
                + run["stderr"][-3000:]
            )
        pytest.fail(f"pip could not resolve (registry unreachable?):\n{run['stderr'][-3000:]}")
    report = run["report"]
    pins = read_pins(PINS)
    assert replaced_packages(report, pins) == []
    installed = {normalized(item["metadata"]["name"]) for item in report["install"]}
    # What Colab lacks is installed; everything the kit needs from Colab keeps its version.
    assert {"espeakng-loader", "codecarbon"} <= installed
    for name in ("tensorflow", "keras", "librosa", "ipywidgets", "numpy", "psutil"):
        assert name in installed and name in pins


if __name__ == "__main__":  # python tests/test_colab_install.py --all FOLDER: the background job
    resolve_on_colabs_pins(Path(sys.argv[2]))
