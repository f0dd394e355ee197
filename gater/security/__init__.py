"""Security: TLS and mTLS (tls), who a caller is (credentials), what they may do (policy,
access), how fast they may ask (ratelimit).

Must not import gater.store, gater.subscriptions, gater.node or gater.gateway: nodes and
gateways both build on it.
"""

from .access import ADMIN_METHODS, AUDIT_STORE, AUDIT_STREAM, Access, access_of
from .credentials import ApiKeys, Authenticator, CredentialsError, JwtConfig, JwtVerifier, new_key
from .policy import (
    ALL_STREAM,
    ANONYMOUS,
    Operation,
    Policy,
    PolicyError,
    Principal,
    Scope,
    allow_all,
    load_policy,
)
from .ratelimit import RateLimiter
from .tls import ChannelTls, ServerTls, ServerTlsFiles, TlsError, is_loopback

__all__ = [
    "ADMIN_METHODS",
    "ALL_STREAM",
    "ANONYMOUS",
    "AUDIT_STORE",
    "AUDIT_STREAM",
    "Access",
    "ApiKeys",
    "Authenticator",
    "ChannelTls",
    "CredentialsError",
    "JwtConfig",
    "JwtVerifier",
    "Operation",
    "Policy",
    "PolicyError",
    "Principal",
    "RateLimiter",
    "Scope",
    "ServerTls",
    "ServerTlsFiles",
    "TlsError",
    "access_of",
    "allow_all",
    "is_loopback",
    "load_policy",
    "new_key",
]
