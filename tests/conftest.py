"""Shared test fixtures: no network (R5), two logical CPUs for MirroredStrategy tests."""

from __future__ import annotations

import socket

import pytest
import tensorflow as tf

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
