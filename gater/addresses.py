"""What an address says about where it leads.

Owns: `is_loopback()`, shared by the client (a credential never travels in clear off this
machine) and the servers (plaintext on a non-loopback address is warned about, a secret refused).
Must not import anything from gater.
"""

from __future__ import annotations

import ipaddress

__all__ = ["is_loopback"]


def is_loopback(address: str) -> bool:
    """Whether "host:port" (or a bare host) names this machine: localhost, a loopback IP
    (127.0.0.0/8, ::1), or a unix socket."""
    if address.startswith(("unix:", "unix-abstract:")):
        return True
    host = address.rpartition(":")[0] if address.count(":") == 1 or address.startswith("[") else address
    host = host.strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
