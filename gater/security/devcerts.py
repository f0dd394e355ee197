"""Development certificates: a CA and certificates it signs, for trying TLS and mTLS locally.

Owns: `DevCa` — loads the CA in a folder or makes one (`ca.crt`, `ca.key`), and `issue(name)`
writes `<name>.crt` / `<name>.key`, a certificate for `name`, `localhost`, 127.0.0.1 and ::1,
good for serving (a node, a gateway) and for calling (a client, a gateway's or node's outgoing
channels under mTLS). EC P-256 keys, written 0600. Not a PKI: production certificates come
from the operator's (cert-manager, Vault, an internal CA).
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["DevCa", "DevCertError", "ca_certificate"]

_CA_NAME = "gater development CA"


class DevCertError(ValueError):
    """A name or folder that cannot be used; the message says what to fix."""


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    path.chmod(0o600)  # an existing file keeps its mode through O_CREAT: narrow it


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def ca_certificate(key: ec.EllipticCurvePrivateKey, name: str, valid_for: dt.timedelta) -> x509.Certificate:
    """A self-signed CA certificate for `key`, named `name`, valid from five minutes ago."""
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + valid_for)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )


class DevCa:
    """The CA of `folder`: loaded when `ca.crt`/`ca.key` are there, made otherwise."""

    def __init__(self, folder: Path, *, days: int = 30) -> None:
        self.folder = Path(folder)
        self.days = days
        self.cert_path = self.folder / "ca.crt"
        self.key_path = self.folder / "ca.key"
        self.created = False
        if self.cert_path.exists() and self.key_path.exists():
            try:
                self.cert = x509.load_pem_x509_certificate(self.cert_path.read_bytes())
                key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            except ValueError as e:
                raise DevCertError(f"{self.folder}: ca.crt/ca.key are not a PEM certificate and key: {e}") from None
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise DevCertError(f"{self.key_path}: not an EC key (was it made by gater certs?)")
            self.key = key
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = ca_certificate(self.key, _CA_NAME, dt.timedelta(days=days))
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        _write_private(self.key_path, _key_pem(self.key))
        self.created = True

    def issue(self, name: str) -> tuple[Path, Path]:
        """Writes `<name>.crt` and `<name>.key` (replacing them) and returns their paths."""
        if not name or not all(c.isalnum() or c in "-_." for c in name) or name.startswith(".") or name == "ca":
            raise DevCertError(f"name {name!r}: use letters, digits, '-', '_' and '.' (and not 'ca')")
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        alt_names: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([name, "localhost"])]
        alt_names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", "::1")]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(min(now + dt.timedelta(days=self.days), self.cert.not_valid_after_utc))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        cert_path, key_path = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        _write_private(key_path, _key_pem(key))
        return cert_path, key_path
