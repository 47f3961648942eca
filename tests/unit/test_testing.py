"""Helpers the tests share (`dynamictrl.testing`)."""

from __future__ import annotations

import socket

from dynamictrl.testing import _ephemeral_ports, free_port


def test_free_port_is_bindable_and_outside_the_range_the_kernel_hands_out():
    """A port the kernel could give another process's connection in the meantime would race `accelerate launch`."""
    low, high = _ephemeral_ports()
    ports = {free_port() for _ in range(5)}
    assert all(1024 <= port < low or port > high for port in ports), (sorted(ports), low, high)
    for port in ports:
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # nothing listens there
