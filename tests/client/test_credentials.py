"""How a client presents a credential: an API key as x-api-key, a token as a bearer, one of
them at most, and never in plaintext over a network unless the caller says it is trusted."""

from __future__ import annotations

import pytest

from gater.client import (
    Client,
    TLSConfig,
    check_credentials_travel,
    credential_metadata,
    parse_target,
)
from gater.errors import InvalidArgumentError


def test_metadata_for_a_key_or_a_token() -> None:
    assert credential_metadata("gtr.app.s3cret\n") == (("x-api-key", "gtr.app.s3cret"),)
    assert credential_metadata(token="eyJ.a.b") == (("authorization", "Bearer eyJ.a.b"),)
    assert credential_metadata() == ()
    with pytest.raises(InvalidArgumentError, match="api_key"):
        credential_metadata("not-a-key")
    with pytest.raises(InvalidArgumentError, match="token"):
        credential_metadata(token="two words")
    with pytest.raises(InvalidArgumentError, match="not both"):
        credential_metadata("gtr.a.b", "eyJ.a.b")


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "localhost:1", "[::1]:50051", "127.1.2.3:9", "unix:/run/gater.sock"])
def test_plaintext_to_this_machine_is_allowed(address: str) -> None:
    check_credentials_travel([address], api_key="gtr.a.b", token=None, tls=False, allow_insecure=False)


def test_plaintext_over_a_network_is_refused_naming_the_credential() -> None:
    with pytest.raises(InvalidArgumentError, match="token.*plaintext to 10.0.0.5:50051"):
        check_credentials_travel(["127.0.0.1:1", "10.0.0.5:50051"], api_key=None, token="t", tls=False,
                                 allow_insecure=False)  # fmt: skip
    with pytest.raises(InvalidArgumentError, match="api_key"):
        Client(["gater.example:50051"], api_key="gtr.a.b")
    # Over TLS, without a credential, or when told the network is trusted: fine.
    Client(["gater.example:50051"], api_key="gtr.a.b", tls=TLSConfig())
    Client(["gater.example:50051"])
    Client(["gater.example:50051"], token="t", allow_insecure_credentials=True)


def test_a_connection_string_carries_the_credential() -> None:
    options = parse_target("gater://10.0.0.5:50051?tls=true&api_key=gtr.a.b").client_options()
    assert options["api_key"] == "gtr.a.b" and options["tls"] == TLSConfig()
