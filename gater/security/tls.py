"""TLS for listeners and outgoing channels, with certificates re-read without a restart.

Owns: `ServerTls` (server credentials from certificate/key files, and a client CA to require
client certificates — mTLS), `ChannelTls` (credentials for the gateway's and nodes' outgoing
channels: the CA that signs the servers, and an optional client certificate); `is_loopback`
comes from gater.addresses.
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway.

Why rotation drops nothing: grpc asks `ServerTls`'s fetcher for the certificate at every new
TLS handshake. The fetcher compares the files' modification times (and a flag SIGHUP sets)
with what it loaded and hands grpc a new configuration only when something changed; grpc
uses it for new connections, while established connections and their open streams keep the
session they negotiated.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from ..addresses import is_loopback
from ..config import TlsConfig

__all__ = ["ChannelTls", "ServerTls", "TlsError", "is_loopback"]

log = logging.getLogger(__name__)


class TlsError(ValueError):
    """Certificate settings that cannot be used; the message names the file and the fix."""


def _read(path: Path, what: str) -> bytes:
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise TlsError(f"cannot read {what} {path}: {e.strerror}") from None
    if b"-----BEGIN" not in data:
        raise TlsError(f"{what} {path} is not PEM (expected -----BEGIN ...-----)")
    return data


def file_stamp(path: Path | None) -> float:
    """A file's modification time, to notice it changed: 0 for no file, -1 when unreadable."""
    if path is None:
        return 0.0
    try:
        return os.stat(path).st_mtime_ns / 1e9
    except OSError:
        return -1.0


@dataclass(frozen=True, slots=True)
class ServerTlsFiles:
    cert: Path
    key: Path
    client_ca: Path | None = None
    """When set, clients must present a certificate signed by this CA (mTLS)."""


class ServerTls:
    """Server credentials that follow their files. `credentials()` for add_secure_port;
    `reload()` (SIGHUP) makes the next handshake read the files again."""

    def __init__(self, files: ServerTlsFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._forced = False
        self._stamps = self._now_stamps()
        self._config = self._load()  # fails at start, naming the file, if unusable
        self.loads = 1
        """How many times the files were read (1 at start)."""

    @classmethod
    def listener(cls, tls: TlsConfig) -> ServerTls | None:
        """The listener's credentials from a server's TlsConfig; None: plaintext."""
        if tls.cert is None or tls.key is None:
            return None
        return cls(ServerTlsFiles(tls.cert, tls.key, tls.client_ca))

    @property
    def mutual(self) -> bool:
        return self.files.client_ca is not None

    def _now_stamps(self) -> tuple[float, float, float]:
        f = self.files
        return (file_stamp(f.cert), file_stamp(f.key), file_stamp(f.client_ca))

    def _load(self) -> grpc.ServerCertificateConfiguration:
        f = self.files
        pair = (_read(f.key, "TLS key"), _read(f.cert, "TLS certificate"))
        ca = _read(f.client_ca, "client CA") if f.client_ca is not None else None
        return grpc.ssl_server_certificate_configuration([pair], root_certificates=ca)

    def reload(self) -> None:
        with self._lock:
            self._forced = True

    def _fetch(self) -> grpc.ServerCertificateConfiguration | None:
        """Called by grpc (on one of its threads) at each new handshake."""
        with self._lock:
            stamps = self._now_stamps()
            if stamps == self._stamps and not self._forced:
                return None
            self._forced = False
            try:
                config = self._load()
            except TlsError as e:
                # A half-written rotation: keep serving with what we have, try again next time.
                log.warning("TLS files changed but cannot be loaded yet; keeping the current ones", extra={"error": str(e)})
                return None
            self._stamps = stamps
            self.loads += 1
        log.info("TLS certificate reloaded", extra={"cert": str(self.files.cert)})
        return config

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.dynamic_ssl_server_credentials(
            self._config, self._fetch, require_client_authentication=self.mutual
        )


@dataclass(frozen=True, slots=True)
class ChannelTls:
    """How outgoing channels (gateway → node, node → node) verify and present themselves."""

    ca: Path | None = None
    """The CA that signed the servers' certificates; None: the system's roots."""
    cert: Path | None = None
    """A client certificate for mTLS (with `key`)."""
    key: Path | None = None
    server_name: str | None = None
    """Expected name in the servers' certificates when it differs from the dialled host."""

    def __post_init__(self) -> None:
        if (self.cert is None) != (self.key is None):
            raise TlsError("a client certificate needs both its certificate and its key file")

    @classmethod
    def upstream(cls, tls: TlsConfig) -> ChannelTls | None:
        """How a server's outgoing channels (gateway → node, node → node) use TLS, from its
        TlsConfig; None: plaintext."""
        if not tls.upstream:
            return None
        pair = tls.upstream_pair
        return cls(
            ca=tls.upstream_ca,
            cert=pair[0] if pair else None,
            key=pair[1] if pair else None,
            server_name=tls.upstream_server_name,
        )

    def credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca, "CA certificate") if self.ca else None,
            private_key=_read(self.key, "TLS client key") if self.key else None,
            certificate_chain=_read(self.cert, "TLS client certificate") if self.cert else None,
        )

    def options(self) -> list[tuple[str, str]]:
        return [("grpc.ssl_target_name_override", self.server_name)] if self.server_name else []
