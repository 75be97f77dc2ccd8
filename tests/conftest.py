"""Shared test fixtures: no network (R5), two logical CPUs for MirroredStrategy tests, and
the session's quick judge."""

from __future__ import annotations

import socket

import pytest
import tensorflow as tf

from course_lib import config
from course_lib import judge as judging
from course_tools import background_jobs
from data_prep import prepare

# Two logical CPU devices, configured before TensorFlow initialises its runtime, so a
# test can train under MirroredStrategy as on a multi-GPU machine.
_cpus = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    _cpus[0], [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
)

LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class NetworkBlockedError(RuntimeError):
    """Raised when a test opens a connection beyond the loopback interface."""


def _is_loopback(address) -> bool:
    host = address[0] if isinstance(address, tuple) else address
    return not isinstance(host, str) or host in LOOPBACK


@pytest.fixture(autouse=True)
def block_network(monkeypatch):
    """Quick mode must never touch the network: any non-loopback connect fails."""
    real_connect = socket.socket.connect
    real_create_connection = socket.create_connection

    def guarded_connect(sock, address):
        if sock.family != socket.AF_UNIX and not _is_loopback(address):
            raise NetworkBlockedError(f"test tried to connect to {address}")
        return real_connect(sock, address)

    def guarded_create_connection(address, *args, **kwargs):
        if not _is_loopback(address):
            raise NetworkBlockedError(f"test tried to connect to {address}")
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "create_connection", guarded_create_connection)


@pytest.fixture(scope="session")
def two_cpu_strategy():
    """A MirroredStrategy over two logical CPU devices."""
    return tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])


@pytest.fixture(scope="session")
def quick_judge(request) -> judging.Judge:
    """The quick judge of the spoken digits at 16 kHz, as notebooks 02 to 07 restore it.

    The background job ``course_tools.background_jobs.JUDGE`` trains it from the session's
    start (``python tests/test_judge.py --all FOLDER``); this waits for it and restores it.
    """
    background_jobs.wait_for_result(request.config, background_jobs.JUDGE)
    return judging.load_or_train_judge(
        prepare.speech_commands_tfrecords(16000, "sc09"),
        judging.JudgeConfig.quick(),
        config.checkpoint_dir("judge"),
        verbose=0,
    )
