"""Authentication: who a call comes from, from its metadata and its TLS peer.

Owns: `ApiKeys` (a TOML file of hashed keys the operator manages; `new_key` makes one),
`JwtVerifier` (PyJWT: issuer, audience, HS256/RS256/ES256 keys or a JWKS file, expiry and
not-before checked) and `Authenticator`, which turns a call's credentials into a `Principal`
or raises UnauthenticatedError. No grpc here: callers pass the metadata and the TLS auth
context as plain mappings.
Must not import gater.store, gater.subscriptions, gater.node or gater.gateway.

Credentials a call may carry, first match wins:
- `x-api-key: gtr.<id>.<secret>` or `authorization: Bearer gtr.<id>.<secret>` — an API key;
- `authorization: Bearer <JWT>` — a token from the configured issuer;
- a client certificate (mTLS) — principal `cert:<common name>`;
- `x-gater-secret: <cluster secret>` — a peer of the cluster (development option).
A call with none of them is the anonymous principal (which the policy grants nothing unless
it says so); a call with a wrong one is UNAUTHENTICATED, never anonymous.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt

from ..errors import UnauthenticatedError
from .policy import ANONYMOUS, Principal, roles_from_claim

__all__ = [
    "API_KEY_HEADER",
    "PEER_SECRET_PRINCIPAL",
    "ApiKeys",
    "Authenticator",
    "CredentialsError",
    "JwtConfig",
    "JwtVerifier",
    "new_key",
]

API_KEY_HEADER = "x-api-key"
SECRET_HEADER = "x-gater-secret"
PEER_SECRET_PRINCIPAL = "secret:cluster"
_KEY_PREFIX = "gtr"


class CredentialsError(ValueError):
    """A key file or token setting that cannot be used; the message says what to fix."""


def _digest(secret: str) -> str:
    # API keys are 256 random bits: a plain SHA-256 cannot be reversed or guessed, so no slow
    # password hash is needed (and every call can afford to check one).
    return hashlib.sha256(secret.encode()).hexdigest()


def new_key(key_id: str) -> tuple[str, str]:
    """(the key to give the client, the sha256 to store) for a new API key named `key_id`."""
    if not key_id or not all(c.isalnum() or c in "-_" for c in key_id):
        raise CredentialsError(f"key id {key_id!r}: use letters, digits, '-' and '_'")
    secret = secrets.token_urlsafe(32)
    return f"{_KEY_PREFIX}.{key_id}.{secret}", _digest(secret)


@dataclass(frozen=True, slots=True)
class _Key:
    sha256: str
    roles: frozenset[str]


class ApiKeys:
    """API keys from a TOML file: `[keys.<id>]` with `sha256 = "<hex>"` and optional
    `roles = [...]`. The file holds hashes only; `reload()` reads it again."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._keys: dict[str, _Key] = {}
        self.reload()

    def reload(self) -> None:
        try:
            data = tomllib.loads(self.path.read_text(encoding="utf-8"))
        except OSError as e:
            raise CredentialsError(f"cannot read API key file {self.path}: {e.strerror}") from None
        except tomllib.TOMLDecodeError as e:
            raise CredentialsError(f"API key file {self.path} is not valid TOML: {e}") from None
        keys: dict[str, _Key] = {}
        for key_id, entry in data.get("keys", {}).items():
            digest = entry.get("sha256") if isinstance(entry, Mapping) else None
            if not isinstance(digest, str) or len(digest) != 64:
                raise CredentialsError(f"{self.path}: keys.{key_id}.sha256 must be a SHA-256 in hex")
            keys[key_id] = _Key(digest.lower(), frozenset(roles_from_claim(entry.get("roles", []))))
        self._keys = keys

    def verify(self, presented: str) -> Principal:
        """The key's principal (`key:<id>`); UnauthenticatedError when it is not a valid key."""
        prefix, _, rest = presented.partition(".")
        key_id, _, secret = rest.partition(".")
        entry = self._keys.get(key_id) if prefix == _KEY_PREFIX else None
        if entry is None or not secret or not hmac.compare_digest(entry.sha256, _digest(secret)):
            raise UnauthenticatedError("invalid API key (check the key, or ask for a new one)")
        return Principal(f"key:{key_id}", entry.roles)


@dataclass(frozen=True, slots=True)
class JwtConfig:
    """How bearer tokens are checked."""

    issuer: str | None = None
    """Required `iss`; None accepts any issuer."""
    audience: str | None = None
    """Required `aud`; None refuses tokens that name an audience (PyJWT's rule)."""
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    """Accepted signing algorithms (HS256, RS256, ES256, ...)."""
    key_file: Path | None = None
    """A PEM public key (RS/ES) or a file holding the shared secret (HS)."""
    jwks_file: Path | None = None
    """A JSON Web Key Set; the token's `kid` picks the key."""
    roles_claim: str = "roles"
    """The claim holding roles: a list, or a space-separated string (OAuth scopes)."""
    leeway_s: float = 30.0
    """Clock skew allowed on exp/nbf/iat."""


class JwtVerifier:
    def __init__(self, config: JwtConfig) -> None:
        if (config.key_file is None) == (config.jwks_file is None):
            raise CredentialsError("JWT: give exactly one of a key file and a JWKS file")
        self.config = config
        self._key: Any = None
        self._jwks: jwt.PyJWKSet | None = None
        self.reload()

    def reload(self) -> None:
        c = self.config
        try:
            if c.jwks_file is not None:
                self._jwks = jwt.PyJWKSet.from_json(Path(c.jwks_file).read_text(encoding="utf-8"))
            else:
                raw = Path(c.key_file).read_bytes()  # type: ignore[arg-type]
                self._key = raw.strip() if all(a.startswith("HS") for a in c.algorithms) else raw
        except OSError as e:
            raise CredentialsError(f"JWT: cannot read key material: {e}") from None
        except jwt.PyJWTError as e:
            raise CredentialsError(f"JWT: unusable JWKS file {c.jwks_file}: {e}") from None

    def verify(self, token: str) -> Principal:
        """The token's principal (`jwt:<sub>`, roles from the roles claim); UnauthenticatedError
        naming what is wrong (expired, not yet valid, bad signature, wrong audience, ...)."""
        c = self.config
        try:
            key = self._key
            if self._jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                matching = [k for k in self._jwks.keys if kid is None or k.key_id == kid]
                if not matching:
                    raise UnauthenticatedError("bearer token signed with an unknown key (kid)")
                key = matching[0]
            claims = jwt.decode(
                token,
                key,
                algorithms=list(c.algorithms),
                audience=c.audience,
                issuer=c.issuer,
                leeway=c.leeway_s,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise UnauthenticatedError("bearer token expired") from None
        except jwt.ImmatureSignatureError:
            raise UnauthenticatedError("bearer token not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidAudienceError:
            raise UnauthenticatedError("bearer token is for another audience") from None
        except jwt.InvalidIssuerError:
            raise UnauthenticatedError("bearer token from another issuer") from None
        except jwt.InvalidSignatureError:
            raise UnauthenticatedError("bearer token signature does not verify") from None
        except jwt.PyJWTError as e:
            raise UnauthenticatedError(f"invalid bearer token: {e}") from None
        return Principal(f"jwt:{claims['sub']}", frozenset(roles_from_claim(claims.get(c.roles_claim))))


def _first(metadata: Mapping[str, Any] | Sequence[tuple[str, Any]], key: str) -> str | None:
    items = metadata.items() if isinstance(metadata, Mapping) else metadata
    for k, v in items:
        if k == key:
            return v.decode() if isinstance(v, bytes) else str(v)
    return None


@dataclass(slots=True)
class Authenticator:
    """Turns a call's credentials into a Principal (see the module docstring)."""

    api_keys: ApiKeys | None = None
    jwt: JwtVerifier | None = None
    certificates: bool = False
    """Take the client certificate's common name as the principal (mTLS)."""
    cluster_secret: str | None = None

    def authenticate(
        self, metadata: Mapping[str, Any] | Sequence[tuple[str, Any]], auth_context: Mapping[str, Any] | None = None
    ) -> Principal:
        key = _first(metadata, API_KEY_HEADER)
        authorization = _first(metadata, "authorization")
        if authorization is not None:
            scheme, _, token = authorization.strip().partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise UnauthenticatedError("authorization metadata must be `Bearer <token or API key>`")
            token = token.strip()
            if token.startswith(f"{_KEY_PREFIX}."):
                key = token
            elif self.jwt is not None:
                return self.jwt.verify(token)
            else:
                raise UnauthenticatedError("bearer tokens are not accepted here (no JWT issuer is configured)")
        if key is not None:
            if self.api_keys is None:
                raise UnauthenticatedError("API keys are not accepted here (no key file is configured)")
            return self.api_keys.verify(key)
        if self.certificates and auth_context:
            names = auth_context.get("x509_common_name") or ()
            if names:
                name = names[0].decode() if isinstance(names[0], bytes) else str(names[0])
                return Principal(f"cert:{name}")
        secret = _first(metadata, SECRET_HEADER)
        if secret is not None and self.cluster_secret:
            if hmac.compare_digest(secret.encode(), self.cluster_secret.encode()):
                return Principal(PEER_SECRET_PRINCIPAL)
            raise UnauthenticatedError(f"wrong cluster secret in {SECRET_HEADER}")
        return ANONYMOUS
