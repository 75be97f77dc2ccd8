"""A workaround for notebook runs that stall on a kernel reply that has already arrived.

``nbclient`` (used by ``pytest --nbmake`` and by ``course_tools.run_course``) waits for a
cell's ``execute_reply`` with one long ``zmq.asyncio`` poll of the shell socket. When a
cell shows widgets that display audio, the wake-up for that reply is sometimes missed
(jupyter/nbclient#312, jupyter/nbconvert#2029): the kernel is idle, the reply sits in
the socket, and the client sleeps until the whole cell timeout expires (300 s here) and
then carries on as if nothing happened. We measured it on notebook 01: 3 of 6 runs
stalled on the ``clip_browser`` cell.

The workaround polls in short slices, so a missed wake-up costs at most one slice.
Students on Colab are unaffected: the Colab front end does not use nbclient.
"""

from __future__ import annotations

import time
from queue import Empty

POLL_SLICE_SECONDS = 0.5


async def _get_msg_in_slices(self, timeout: float | None = None) -> dict:
    """``AsyncZMQSocketChannel.get_msg`` that re-polls every ``POLL_SLICE_SECONDS``."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        remaining = POLL_SLICE_SECONDS if deadline is None else deadline - time.monotonic()
        slice_ms = int(1000 * max(0.0, min(POLL_SLICE_SECONDS, remaining)))
        if await self.socket.poll(slice_ms):
            return await self._recv()
        if deadline is not None and time.monotonic() >= deadline:
            raise Empty


def poll_kernel_replies_in_slices() -> None:
    """Patch ``jupyter_client``'s async channels (idempotent); call before running notebooks."""
    from jupyter_client import channels

    # jupyter_client 8 names the async channel AsyncZMQSocketChannel; 7.x (Colab's
    # 7.4.9) has one channel class, ZMQSocketChannel, which is already async.
    channel = getattr(channels, "AsyncZMQSocketChannel", None) or channels.ZMQSocketChannel
    channel.get_msg = _get_msg_in_slices
