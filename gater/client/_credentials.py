"""How a client says who it is: an API key or a bearer token, sent as metadata on every call.

Owns: `credential_metadata` — an API key (`gtr.<id>.<secret>`, from `gater keys add`) becomes
`x-api-key`, a token (a JWT from the operator's identity provider, or an API key) becomes
`authorization: Bearer <token>`; checked here so that a pasted value with a stray space or
newline fails at once, naming the argument, rather than at the server. And
`check_credentials_travel`: a credential goes only over TLS or to this machine (loopback),
never in clear over a network, unless the caller says the network is trusted. Pure.
Must not import anything from gater but gater.errors and gater.addresses.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..addresses import is_loopback
from ..errors import InvalidArgumentError

__all__ = ["API_KEY_HEADER", "check_credentials_travel", "credential_metadata", "is_loopback"]

API_KEY_HEADER = "x-api-key"
_API_KEY_PREFIX = "gtr."


def _clean(name: str, value: str) -> str:
    value = value.strip()  # a key read from a file ends with a newline
    if not value:
        raise InvalidArgumentError(name, "is empty")
    if not all("!" <= c <= "~" for c in value):
        raise InvalidArgumentError(name, "must be printable ASCII without spaces (was it pasted whole?)")
    return value


def credential_metadata(api_key: str | None = None, token: str | None = None) -> tuple[tuple[str, str], ...]:
    """The call metadata that presents `api_key` or `token` (at most one of them)."""
    if api_key is not None and token is not None:
        raise InvalidArgumentError("api_key", "give an API key or a token, not both")
    if api_key is not None:
        api_key = _clean("api_key", api_key)
        if not api_key.startswith(_API_KEY_PREFIX):
            raise InvalidArgumentError(
                "api_key", "is not an API key (they look like gtr.<id>.<secret>); pass a JWT as token"
            )
        return ((API_KEY_HEADER, api_key),)
    if token is not None:
        return (("authorization", f"Bearer {_clean('token', token)}"),)
    return ()


def check_credentials_travel(
    addresses: Sequence[str], *, api_key: str | None, token: str | None, tls: bool, allow_insecure: bool
) -> None:
    """InvalidArgumentError (naming api_key or token) when the credential would cross a network
    in plaintext: anyone on the way could read it and call as its owner."""
    name = "api_key" if api_key is not None else "token" if token is not None else None
    if name is None or tls or allow_insecure:
        return
    remote = [a for a in addresses if not is_loopback(a)]
    if remote:
        raise InvalidArgumentError(
            name,
            f"would be sent in plaintext to {', '.join(remote)}; connect with TLS (tls=..., --tls/--ca-file), "
            "or allow_insecure_credentials=True (--allow-insecure-credentials) on a network you trust",
        )
