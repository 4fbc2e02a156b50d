"""Free UDP ports on a host, found by binding: for the harness's own processes (Kamailio,
pyVoIP phones), the tests and the SIP benchmark. Free when asked: a port can be taken again
before it is used, so callers still handle "in use"."""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def udp_port_free(port: int, host: str = LOOPBACK) -> bool:
    """Whether `port` can be bound on `host` now."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_udp_ports(count: int = 1, host: str = LOOPBACK) -> int:
    """The first of `count` consecutive UDP ports free on `host` (an even one)."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            base = int(probe.getsockname()[1]) & ~1
        if base + count < 65536 and all(udp_port_free(port, host)
                                        for port in range(base, base + count)):
            return base
    raise RuntimeError(f"no run of {count} free UDP ports on {host}")
