"""Where a client connects: "host:port" lists and ``gater://`` connection strings.

Owns: `parse_target` — ``"host:port"``, ``"h1:p1,h2:p2"``, a sequence of those, or
``gater://h1:p1,h2:p2?tls=true&tls_ca_file=ca.crt&api_key=gtr...&timeout_s=5`` → the addresses
and the connect options the string carries (`Target.client_options` turns them into `Client`
keyword arguments). Any other scheme (``esdb://``, ``kurrentdb://``, ``http://``, …) is refused
with an InvalidArgumentError that says what is supported, rather than failing later as
"connection failed". Pure, but for `client_options`, which reads the files a string names (when
the client connects).
Must not import anything from gater but gater.errors.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidArgumentError
from ._values import TLSConfig

__all__ = ["DEFAULT_PORT", "DEFAULT_TARGET", "SCHEME", "Target", "parse_target"]

SCHEME = "gater"
DEFAULT_PORT = 50051
DEFAULT_TARGET = f"127.0.0.1:{DEFAULT_PORT}"

_SUPPORTED = (
    "give host:port (several comma-separated) or a connection string "
    "gater://host:port[,host:port...][?tls=true&tls_ca_file=...&api_key=...&timeout_s=...]"
)
_BOOLEANS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}
_SECONDS = ("timeout_s", "connect_timeout_s")
_FILES = ("tls_ca_file", "tls_cert_file", "tls_key_file")
_SECRETS = ("api_key", "token")
_PARAMETERS = ("tls", "tls_server_name", *_SECONDS, *_FILES, *_SECRETS)


@dataclass(frozen=True, slots=True)
class Target:
    """What a target string says: the addresses to try in turn, and options for
    `Client.connect` (keys among tls, tls_server_name, tls_ca_file, tls_cert_file,
    tls_key_file, api_key, token, timeout_s, connect_timeout_s)."""

    addresses: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    def client_options(self) -> dict[str, Any]:
        """`Client` keyword arguments from the string's parameters (the TLS files read now)."""
        options = self.options
        out = {k: options[k] for k in (*_SECONDS, *_SECRETS) if k in options}
        files = {k: Path(options[k]).read_bytes() for k in _FILES if k in options}
        if options.get("tls") or files or "tls_server_name" in options:
            if options.get("tls") is False:
                raise InvalidArgumentError("target", "tls=false contradicts the tls_* parameters")
            out["tls"] = TLSConfig(
                root_certificates=files.get("tls_ca_file"),
                certificate_chain=files.get("tls_cert_file"),
                private_key=files.get("tls_key_file"),
                server_name=options.get("tls_server_name"),
            )
        return out


def parse_target(target: str | Sequence[str]) -> Target:
    """The addresses and options of `target`; InvalidArgumentError (field "target") when it
    is not something a client can connect to."""
    if not isinstance(target, str):
        addresses = tuple(t.strip() for t in target if t.strip())
    elif "://" in target:
        return _connection_string(target)
    else:
        addresses = tuple(t.strip() for t in target.split(",") if t.strip())
    if not addresses:
        raise InvalidArgumentError("target", f"no address given; {_SUPPORTED}")
    return Target(addresses)


def _connection_string(text: str) -> Target:
    scheme = text.split("://", 1)[0]
    if scheme.lower() != SCHEME:
        raise InvalidArgumentError(
            "target", f"{scheme}:// connection strings are not supported here (this is ExESDB Gater); {_SUPPORTED}"
        )
    url = urllib.parse.urlsplit(text)
    if url.path not in ("", "/") or url.fragment:
        extra = url.path if url.path not in ("", "/") else "#" + url.fragment
        raise InvalidArgumentError("target", f"unexpected {extra!r} after the hosts; {_SUPPORTED}")
    addresses = tuple(_address(a) for a in url.netloc.split(",") if a.strip())
    if not addresses:
        raise InvalidArgumentError("target", f"no host in {text!r}; {_SUPPORTED}")
    options: dict[str, Any] = {}
    for name, value in urllib.parse.parse_qsl(url.query, keep_blank_values=True, strict_parsing=False):
        options[name] = _option(name, value)
    return Target(addresses, options)


def _address(text: str) -> str:
    """host:port, with the default port when none is given ([v6]:port for IPv6)."""
    text = text.strip()
    host, sep, port = text.rpartition(":")
    if not sep or host.endswith(":") or (text.startswith("[") and text.endswith("]")):
        return f"{text}:{DEFAULT_PORT}"
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgumentError("target", f"{text!r} is not host:port; {_SUPPORTED}")
    return text


def _option(name: str, value: str) -> Any:
    if name == "tls":
        if value.lower() not in _BOOLEANS:
            raise InvalidArgumentError("target", f"tls={value!r} must be true or false")
        return _BOOLEANS[value.lower()]
    if name in _SECONDS:
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if seconds <= 0:
            raise InvalidArgumentError("target", f"{name}={value!r} must be a number of seconds > 0")
        return seconds
    if name in _FILES or name in _SECRETS or name == "tls_server_name":
        if not value:
            raise InvalidArgumentError("target", f"{name} needs a value")
        return value
    raise InvalidArgumentError("target", f"unknown parameter {name!r} (known: {', '.join(_PARAMETERS)})")
