"""Real X.509 certificates for tests, made with the `cryptography` package: a CA, server
certificates for 127.0.0.1/localhost, client certificates, and ones that are expired or
signed by another CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gater.security.devcerts import ca_certificate


@dataclass(frozen=True)
class Pair:
    cert: Path
    key: Path


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write(path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Pair:
    path.parent.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = path.with_suffix(".crt"), path.with_suffix(".key")
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return Pair(cert_path, key_path)


class CA:
    """A certificate authority that issues certificates into `folder`."""

    def __init__(self, folder: Path, name: str = "gater test CA") -> None:
        self.folder = folder
        self.key = _key()
        self.cert = ca_certificate(self.key, name, dt.timedelta(days=30))  # what `gater certs` makes
        self.pair = _write(folder / name.replace(" ", "_"), self.cert, self.key)

    @property
    def path(self) -> Path:
        return self.pair.cert

    def issue(
        self,
        name: str,
        *,
        server: bool = True,
        client: bool = True,
        valid_from: dt.datetime | None = None,
        valid_for: dt.timedelta = dt.timedelta(days=7),
        file: str | None = None,
    ) -> Pair:
        key = _key()
        now = dt.datetime.now(dt.UTC)
        start = valid_from or now - dt.timedelta(minutes=5)
        usages = ([ExtendedKeyUsageOID.SERVER_AUTH] if server else []) + ([ExtendedKeyUsageOID.CLIENT_AUTH] if client else [])
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + valid_for)
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.DNSName(name), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                critical=False,
            )
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return _write(self.folder / (file or name), cert, key)
