"""Authentication: API keys from a hashed key file, JWT bearer tokens (HS256, RS256, ES256,
JWKS), client certificates and the cluster secret, each turned into a principal."""

from __future__ import annotations

import json
import time
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gater.errors import UnauthenticatedError
from gater.security.credentials import (
    ApiKeys,
    Authenticator,
    CredentialsError,
    JwtConfig,
    JwtVerifier,
    new_key,
)


def _pem_public(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def keys_file(tmp_path: Path) -> tuple[Path, str]:
    key, digest = new_key("billing")
    path = tmp_path / "keys.toml"
    path.write_text(f'[keys.billing]\nsha256 = "{digest}"\nroles = ["billing"]\n')
    return path, key


def test_api_keys_are_stored_hashed_and_checked(keys_file: tuple[Path, str]) -> None:
    path, key = keys_file
    assert key.split(".")[2] not in path.read_text()  # the file never holds the key itself
    keys = ApiKeys(path)
    principal = keys.verify(key)
    assert principal.name == "key:billing" and principal.roles == {"billing"}
    for wrong in (key + "x", key.replace("billing", "other"), "gtr.billing.", "nonsense", ""):
        with pytest.raises(UnauthenticatedError, match="invalid API key"):
            keys.verify(wrong)


def test_bad_key_files(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError, match="cannot read"):
        ApiKeys(tmp_path / "none.toml")
    (tmp_path / "k.toml").write_text('[keys.a]\nsha256 = "short"\n')
    with pytest.raises(CredentialsError, match="keys.a.sha256"):
        ApiKeys(tmp_path / "k.toml")
    with pytest.raises(CredentialsError, match="key id"):
        new_key("has.dot")


def _token(key, alg: str, **claims) -> str:
    now = int(time.time())
    body = {"sub": "alice", "iss": "https://idp.example", "aud": "gater", "exp": now + 300, "iat": now, **claims}
    return jwt.encode({k: v for k, v in body.items() if v is not None}, key, algorithm=alg, headers={"kid": "k1"})


@pytest.fixture(params=["HS256", "RS256", "ES256", "JWKS"])
def signer(request: pytest.FixtureRequest, tmp_path: Path):
    """(signing key, algorithm, verifier) for each kind of key material."""
    alg = request.param
    if alg == "HS256":
        secret = "s3cret-that-is-long-enough-for-hs256-0123456789"
        (tmp_path / "hs.key").write_text(secret + "\n")
        return secret, alg, JwtVerifier(JwtConfig("https://idp.example", "gater", ("HS256",), key_file=tmp_path / "hs.key"))
    if alg == "ES256":
        key = ec.generate_private_key(ec.SECP256R1())
        (tmp_path / "es.pem").write_bytes(_pem_public(key))
        return key, alg, JwtVerifier(JwtConfig("https://idp.example", "gater", ("ES256",), key_file=tmp_path / "es.pem"))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if alg == "RS256":
        (tmp_path / "rs.pem").write_bytes(_pem_public(key))
        return key, alg, JwtVerifier(JwtConfig("https://idp.example", "gater", ("RS256",), key_file=tmp_path / "rs.pem"))
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**jwk, "kid": "k1", "alg": "RS256", "use": "sig"}]}))
    return key, "RS256", JwtVerifier(JwtConfig("https://idp.example", "gater", ("RS256",), jwks_file=tmp_path / "jwks.json"))


def test_a_valid_token_is_its_subject_with_its_roles(signer) -> None:
    key, alg, verifier = signer
    principal = verifier.verify(_token(key, alg, roles=["admin", "billing"]))
    assert principal.name == "jwt:alice" and principal.roles == {"admin", "billing"}
    assert verifier.verify(_token(key, alg, roles="read write")).roles == {"read", "write"}


@pytest.mark.parametrize(
    ("claims", "says"),
    [
        ({"exp": int(time.time()) - 3600}, "expired"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
        ({"aud": "someone-else"}, "another audience"),
        ({"iss": "https://evil.example"}, "another issuer"),
        ({"exp": None}, "exp"),
    ],
)
def test_bad_tokens_are_unauthenticated(signer, claims: dict, says: str) -> None:
    key, alg, verifier = signer
    with pytest.raises(UnauthenticatedError, match=says):
        verifier.verify(_token(key, alg, **claims))


def test_a_token_signed_by_another_key_is_refused(signer) -> None:
    _, alg, verifier = signer
    other = {
        "HS256": "another-secret-that-is-long-enough-0123456789",
        "ES256": ec.generate_private_key(ec.SECP256R1()),
    }.get(alg) or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(UnauthenticatedError):
        verifier.verify(_token(other, alg))


def test_the_authenticator_picks_the_credential(keys_file: tuple[Path, str], signer) -> None:
    path, key = keys_file
    token_key, alg, verifier = signer
    auth = Authenticator(api_keys=ApiKeys(path), jwt=verifier, certificates=True, cluster_secret="sesame")
    assert auth.authenticate({"x-api-key": key}).name == "key:billing"
    assert auth.authenticate([("authorization", f"Bearer {key}")]).name == "key:billing"
    assert auth.authenticate([("authorization", f"Bearer {_token(token_key, alg)}")]).name == "jwt:alice"
    assert auth.authenticate({}, {"x509_common_name": [b"gateway-1"]}).name == "cert:gateway-1"
    assert auth.authenticate({"x-gater-secret": "sesame"}).name == "secret:cluster"
    assert auth.authenticate({}).anonymous
    for metadata in ({"x-gater-secret": "wrong"}, {"authorization": "Basic abc"}, {"x-api-key": "gtr.x.y"}):
        with pytest.raises(UnauthenticatedError):
            auth.authenticate(metadata)
    with pytest.raises(UnauthenticatedError, match="no JWT issuer"):
        Authenticator().authenticate({"authorization": "Bearer abc.def.ghi"})
