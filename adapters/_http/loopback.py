"""Whether a host is this machine: the one check the servers jobwait starts (the
webhook receiver, the job server) and the job server's notifier make before they
bind or send anywhere else."""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback"]


def is_loopback(host: str | None) -> bool:
    """Whether ``host`` is ``localhost`` or a loopback address (IPv4 or IPv6)."""
    if host == "localhost":
        return True
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
