"""data_prep.conversion_lock: conversions into one folder take turns across processes.

The holders are real processes (``subprocess``), since ``flock`` is what the kernel
enforces between them; each test bounds its waits, so a broken lock fails rather than
hangs.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile

from course_lib import data
from data_prep import conversion_lock as locking
from data_prep import prepare

pytestmark = pytest.mark.skipif(locking.fcntl is None, reason="no fcntl on this platform")

REPO = Path(__file__).resolve().parents[1]

HOLDER = """
import sys, time
from pathlib import Path
from data_prep.conversion_lock import conversion_lock
out, release = Path(sys.argv[1]), Path(sys.argv[2])
with conversion_lock(out):
    print("held", flush=True)
    while not release.exists():
        time.sleep(0.02)
"""


def _start_holder(out: Path, release: Path) -> subprocess.Popen:
    """A process that takes the lock on ``out`` and keeps it until ``release`` exists."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(out), str(release)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def _locked_in_thread(out: Path, messages: list[str]) -> tuple[threading.Thread, dict]:
    """Take the lock on ``out`` in a daemon thread; the dict gets ``"at"`` once it is held."""
    state: dict[str, float] = {}

    def take() -> None:
        with locking.conversion_lock(out, say=messages.append):
            state["at"] = time.monotonic()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    return thread, state


def test_a_second_process_waits_for_the_holder_and_says_which_it_is(tmp_path):
    out, release = tmp_path / "out", tmp_path / "release"
    holder = _start_holder(out, release)
    messages: list[str] = []
    thread, state = _locked_in_thread(out, messages)
    time.sleep(1.0)
    assert "at" not in state  # still waiting while the holder runs
    released_at = time.monotonic()
    release.touch()
    thread.join(timeout=20)
    holder.wait(timeout=20)
    assert state["at"] >= released_at
    assert messages == [f"waiting for process {holder.pid}, which is converting into {out} ..."]


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    out = tmp_path / "out"
    holder = _start_holder(out, tmp_path / "never")
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=20)
    assert str(holder.pid) in (out / locking.LOCK_NAME).read_text()  # its pid is still written
    messages: list[str] = []
    thread, state = _locked_in_thread(out, messages)
    thread.join(timeout=20)
    assert "at" in state and messages == []


def test_the_holder_may_lock_its_folder_again_without_waiting_on_itself(tmp_path):
    messages: list[str] = []
    entered = []

    def nested() -> None:
        with (
            locking.conversion_lock(tmp_path / "out", say=messages.append),
            locking.conversion_lock(tmp_path / "out", say=messages.append),
        ):
            entered.append(True)

    thread = threading.Thread(target=nested, daemon=True)
    thread.start()
    thread.join(timeout=20)
    assert entered == [True] and messages == []
    assert locking._held == set()  # released on the way out


def test_a_folder_that_cannot_be_locked_is_converted_unlocked_with_a_message(tmp_path, monkeypatch):
    def refuse(handle, operation):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(locking.fcntl, "flock", refuse)
    messages: list[str] = []
    ran = []
    with (
        locking.conversion_lock(tmp_path / "out", say=messages.append),
        locking.conversion_lock(tmp_path / "out", say=messages.append),  # said once, not twice
    ):
        ran.append(True)
    assert ran == [True] and locking._held == set()
    assert messages == [
        f"{(tmp_path / 'out').resolve()} cannot be locked ({os.strerror(errno.ENOLCK)}): "
        "converting without a lock."
    ]


def _read_lines(stream, seen: list[str]) -> None:
    for line in stream:
        seen.append(line)


CONVERTER = """
import sys
from data_prep import prepare
folder = prepare.music_tfrecords(sys.argv[1], sample_rate=8000, root=sys.argv[2])
print("folder", folder, flush=True)
"""


def test_two_processes_asking_for_one_dataset_convert_it_once(tmp_path):
    """Both processes start while the folder is locked (as if a third were converting),
    so both wait; once it is free, one converts and the other finds its finished folder."""
    rate, classes, files_per_class = 8000, ("a", "b"), 3
    source = tmp_path / "genres"
    rng = np.random.default_rng(0)
    for name in classes:
        (source / name).mkdir(parents=True)
        for index in range(files_per_class):
            clip = 0.1 * rng.standard_normal(rate).astype(np.float32)
            soundfile.write(source / name / f"{index}.wav", clip, rate)
    root = tmp_path / "data"
    out = prepare.music_folder(root, source, rate, 1.0)
    release = tmp_path / "release"
    holder = _start_holder(out, release)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    converters = [
        subprocess.Popen(
            [sys.executable, "-c", CONVERTER, str(source), str(root)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    lines: list[list[str]] = [[], []]
    readers = [
        threading.Thread(target=_read_lines, args=(converter.stdout, seen), daemon=True)
        for converter, seen in zip(converters, lines, strict=True)
    ]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 180
    while not all(any("waiting for process" in line for line in seen) for seen in lines):
        assert time.monotonic() < deadline, f"the converters did not wait: {lines}"
        time.sleep(0.1)
    release.touch()
    for converter, reader in zip(converters, readers, strict=True):
        assert converter.wait(timeout=300) == 0
        reader.join(timeout=20)
    holder.wait(timeout=20)
    stdouts = ["".join(seen) for seen in lines]
    for stdout in stdouts:
        assert f"folder {out}" in stdout
    assert sum("waiting for process" in stdout for stdout in stdouts) == 2
    assert sum(stdout.count("converted 6 of 6 files") for stdout in stdouts) == 1
    manifest = data.read_manifest(out)
    assert sum(split["examples"] for split in manifest.splits.values()) == 6
    assert manifest.skipped == []
