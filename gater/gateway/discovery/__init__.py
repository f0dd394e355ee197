"""Discovery: where a gateway learns which nodes exist (static list, Consul, DNS). How a node
announces itself in Consul is the node's business (gater/node/registration.py); the Consul
agent client both use is gater/consul.py (re-exported here for discovery's callers).

Owns the one provider interface (`Discovery`: start()/stop()/async with, `members()`,
`snapshot()`, `wait_for_change()`, `watch()`, `ok`, `last_error`) and its three providers.
Must not import gater.store, gater.subscriptions, gater.node, nor read os.environ (cli.py
parses CONSUL_HTTP_ADDR, CONSUL_HTTP_TOKEN, EX_ESDB_GATER_CONNECT_TO into the configs here).
"""

from gater.consul import (
    DEFAULT_SERVICE_NAME,
    AsyncConsul,
    ConsulAgentConfig,
    ConsulUnreachableError,
    parse_consul_address,
)
from gater.gateway.discovery._base import (
    Discovery,
    DiscoveryConfigError,
    DiscoverySnapshot,
    MemberAddress,
    backoff_s,
    diff_members,
    parse_host_port,
)
from gater.gateway.discovery._consul import (
    ConsulDiscovery,
    ConsulDiscoveryConfig,
    members_from_health,
    next_index,
)
from gater.gateway.discovery._dns import DnsDiscovery, DnsDiscoveryConfig, members_from_answer
from gater.gateway.discovery._static import CONNECT_TO_VARIABLE, StaticDiscovery, parse_node_list

__all__ = [
    "CONNECT_TO_VARIABLE",
    "DEFAULT_SERVICE_NAME",
    "AsyncConsul",
    "ConsulAgentConfig",
    "ConsulDiscovery",
    "ConsulDiscoveryConfig",
    "ConsulUnreachableError",
    "Discovery",
    "DiscoveryConfigError",
    "DiscoverySnapshot",
    "DnsDiscovery",
    "DnsDiscoveryConfig",
    "MemberAddress",
    "StaticDiscovery",
    "backoff_s",
    "diff_members",
    "members_from_answer",
    "members_from_health",
    "next_index",
    "parse_consul_address",
    "parse_host_port",
    "parse_node_list",
]
