"""One conversion at a time into a folder, across processes.

Two notebooks, or a notebook and ``benchmarks/speaks.py``, can ask for the same TFRecords
at once. Without a lock, both convert: the second deletes the half-written shard files of
the first (``*.tfrecord.tmp``, when it clears stale files) and both write the same
shards at once, so what ends in the folder depends on timing (and the work is done
twice). :func:`conversion_lock` makes the second one wait, saying who it waits for, and
:mod:`data_prep.prepare` then finds the finished folder instead of converting again.

The lock is an advisory ``flock`` on ``<out>/.converting.lock``: the kernel drops it when
its holder exits or crashes, so a killed conversion never leaves a stale lock behind.
It holds between the processes of one machine. Where the file system cannot lock (some
network and FUSE mounts), or on a platform without ``fcntl``, the conversion goes ahead
unlocked and says so once; the conversion itself is resumable (see
:mod:`data_prep.convert`), so a rerun repairs what a collision broke.

Used in: :mod:`data_prep.convert` and :mod:`data_prep.prepare`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no advisory locks here
    fcntl = None

LOCK_NAME = ".converting.lock"
"""The lock file inside the output folder (kept after use; only its lock state matters)."""

_held: set[Path] = set()  # folders this process holds, so nested calls do not wait on themselves


@contextlib.contextmanager
def conversion_lock(out: str | Path, say: Callable[[str], None] = print) -> Iterator[None]:
    """Hold the exclusive lock on converting into ``out`` for the ``with`` block.

    Waits (without a time limit) while another process holds it, after saying which
    process that is. Re-entrant within a process: a nested call for the same folder
    returns at once.

    Args:
        out: the output folder (created if missing).
        say: where the one-line waiting and no-lock messages go.
    """
    out = Path(out).resolve()
    if out in _held:
        yield
        return
    out.mkdir(parents=True, exist_ok=True)
    _held.add(out)  # also when unlocked: a nested call must not say so again
    try:
        if fcntl is None:
            say(f"no file locks on this platform: converting into {out} without a lock.")
            yield
            return
        lock_path = out / LOCK_NAME
        with open(lock_path, "a+") as handle:
            locked = _acquire(handle, lock_path, say)
            if locked:
                handle.seek(0)
                handle.truncate()
                handle.write(f"{os.getpid()}\n")
                handle.flush()
            try:
                yield
            finally:
                if locked:  # explicit: decoding workers may have inherited the handle
                    fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        _held.discard(out)


def _acquire(handle, lock_path: Path, say: Callable[[str], None]) -> bool:
    """Lock ``handle``, waiting for its holder if there is one; False when the file
    system cannot lock (after saying so)."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        pass
    except OSError as error:  # ENOLCK, EOPNOTSUPP...: a mount that cannot lock
        say(f"{lock_path.parent} cannot be locked ({error.strerror}): converting without a lock.")
        return False
    handle.seek(0)
    holder = handle.read().strip() or "unknown"
    say(f"waiting for process {holder}, which is converting into {lock_path.parent} ...")
    fcntl.flock(handle, fcntl.LOCK_EX)
    return True
