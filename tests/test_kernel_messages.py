"""The sliced kernel-reply poll recovers a missed wake-up and still honours timeouts."""

import asyncio
import time
from queue import Empty

import pytest

from course_tools import kernel_messages


class SocketThatMissesWakeUps:
    """``poll`` reports nothing ``misses`` times (a lost wake-up), then the message."""

    def __init__(self, misses: int):
        self.misses = misses
        self.poll_timeouts_ms = []

    async def poll(self, timeout_ms):
        self.poll_timeouts_ms.append(timeout_ms)
        if len(self.poll_timeouts_ms) > self.misses:
            return 1
        await asyncio.sleep(timeout_ms / 1000)
        return 0


class Channel:
    def __init__(self, socket):
        self.socket = socket

    async def _recv(self):
        return {"msg_type": "execute_reply"}


def test_a_reply_missed_by_one_poll_is_found_by_the_next_slice(monkeypatch):
    monkeypatch.setattr(kernel_messages, "POLL_SLICE_SECONDS", 0.01)
    socket = SocketThatMissesWakeUps(misses=3)
    message = asyncio.run(kernel_messages._get_msg_in_slices(Channel(socket), timeout=300))
    assert message == {"msg_type": "execute_reply"}
    assert socket.poll_timeouts_ms == [10, 10, 10, 10]


def test_without_a_message_it_raises_empty_at_the_timeout(monkeypatch):
    monkeypatch.setattr(kernel_messages, "POLL_SLICE_SECONDS", 0.02)
    socket = SocketThatMissesWakeUps(misses=10**6)
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(kernel_messages._get_msg_in_slices(Channel(socket), timeout=0.1))
    assert 0.1 <= time.monotonic() - start < 1.0
    assert max(socket.poll_timeouts_ms) <= 20


def test_the_patch_replaces_the_channel_method():
    from jupyter_client import channels

    kernel_messages.poll_kernel_replies_in_slices()
    # jupyter_client 8 has AsyncZMQSocketChannel; Colab's 7.4.9 only ZMQSocketChannel.
    channel = getattr(channels, "AsyncZMQSocketChannel", None) or channels.ZMQSocketChannel
    assert channel.get_msg is kernel_messages._get_msg_in_slices
