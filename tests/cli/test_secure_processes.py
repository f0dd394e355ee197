"""Security switched on from the command line, every piece a real process: `gater certs` and
`gater keys add` make the files, `gater node` and `gater gateway` serve TLS, mTLS and API keys
from flags, the client commands call with --ca-file/--cert-file and GATER_API_KEY (exit 0, or
6 when refused), the Python client does the same, and SIGHUP makes a node read its policy
again."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gater.client import Client, TLSConfig
from gater.errors import LimitExceededError, UnauthenticatedError
from tests.procs import GaterProcess

GATER = str(Path(sys.executable).parent / "gater")
EXIT_REFUSED = 6
EXIT_UNAVAILABLE = 4

pytestmark = pytest.mark.timeout(120)


async def gater(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """`gater <args>` run to its end: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        GATER, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    out, err = await proc.communicate()
    return proc.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def pki(tmp_path: Path) -> Path:
    """A development CA and certificates for a node, a gateway and a client, by `gater certs`."""
    folder = tmp_path / "pki"
    code, out, err = await gater("certs", str(folder), "--name", "node", "--name", "gateway", "--name", "client")
    assert code == 0, err
    assert "new CA" in out
    assert {p.name for p in folder.iterdir()} >= {"ca.crt", "ca.key", "node.crt", "node.key", "client.key"}
    assert oct((folder / "node.key").stat().st_mode & 0o777) == "0o600"
    return folder


async def add_key(keys: Path, key_id: str, *roles: str) -> str:
    role_args = [a for r in roles for a in ("--role", r)]
    code, out, err = await gater("keys", "add", key_id, "--file", str(keys), *role_args)
    assert code == 0, err
    return out.strip()


def trusting(ca: Path) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(ca.read_bytes())


async def serving(address: str, credentials: grpc.ChannelCredentials) -> None:
    """Returns once `address` says SERVING on grpc.health.v1 Watch."""
    async with grpc.aio.secure_channel(address, credentials) as channel:
        async for reply in health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(), timeout=60):
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return


async def test_tls_node_with_api_keys_from_flags(tmp_path: Path, pki: Path) -> None:
    keys = tmp_path / "keys.toml"
    key = await add_key(keys, "app")
    assert key.startswith("gtr.app.") and key.split(".")[2] not in keys.read_text()  # only its hash is kept
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    ca = str(pki / "ca.crt")
    node = GaterProcess(
        "node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
        "--tls-cert", str(pki / "node.crt"), "--tls-key", str(pki / "node.key"), "--api-keys", str(keys),
    )  # fmt: skip
    async with node:
        assert "tls=on" in node.log[-1] and "auth=on" in node.log[-1]
        addr = ["--addr", node.address, "--ca-file", ca]

        code, _, err = await gater("append", "orders", "--type", "placed", "--data", "{}", *addr)
        assert code == EXIT_REFUSED and "UNAUTHENTICATED" in err and "--api-key" in err
        code, out, err = await gater("append", "orders", "--type", "placed", "--data", "{}", *addr,
                                     env={"GATER_API_KEY": key})  # fmt: skip
        assert code == 0, err
        code, out, err = await gater("version", "orders", *addr, "--api-key", key)
        assert (code, out.strip()) == (0, '{"stream_id": "orders", "version": 0}'), err
        code, _, err = await gater("version", "orders", *addr, "--api-key", key[:-1] + "x")
        assert code == EXIT_REFUSED and "invalid API key" in err
        # Plaintext to a TLS listener: nothing answers it.
        code, _, err = await gater("version", "orders", "--addr", node.address, env={"GATER_API_KEY": key})
        assert code == EXIT_UNAVAILABLE, err
        # Health stays open; with TLS and a key it is SERVING too.
        code, out, _ = await gater("health", *addr, env={"GATER_API_KEY": key})
        assert (code, out.strip()) == (0, f"{node.address}: SERVING")

        # The Python client: the key as a bearer token, over TLS.
        tls = TLSConfig(root_certificates=(pki / "ca.crt").read_bytes())
        async with await Client.connect(node.address, tls=tls, token=key) as client:
            assert await client.get_version("", "orders") == 0
        async with await Client.connect(node.address, tls=tls) as client:
            with pytest.raises(UnauthenticatedError):
                await client.get_version("", "orders")


async def test_certs_then_an_mtls_node_and_gateway_from_flags(tmp_path: Path, pki: Path) -> None:
    ca, client_cert, client_key = pki / "ca.crt", pki / "client.crt", pki / "client.key"
    node = GaterProcess(
        "node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
        "--tls-cert", str(pki / "node.crt"), "--tls-key", str(pki / "node.key"), "--tls-client-ca", str(ca),
    )  # fmt: skip
    async with node:
        gateway = GaterProcess(
            "gateway", "--listen", "127.0.0.1:0", "--nodes", node.address,
            "--tls-cert", str(pki / "gateway.crt"), "--tls-key", str(pki / "gateway.key"),
            "--upstream-ca", str(ca),  # and --tls-cert as its client certificate
        )  # fmt: skip
        async with gateway:
            await serving(gateway.address, trusting(ca))  # a node answered the gateway's health checks over mTLS
            through = ["--addr", gateway.address, "--ca-file", str(ca)]
            code, _, err = await gater("append", "s1", "--type", "t", "--data", '{"n": 1}', *through)
            assert code == 0, err
            code, out, err = await gater("version", "s1", *through)
            assert (code, out.strip()) == (0, '{"stream_id": "s1", "version": 0}'), err

            direct = ["--addr", node.address, "--ca-file", str(ca)]
            code, out, err = await gater("version", "s1", *direct, "--cert-file", str(client_cert),
                                         "--key-file", str(client_key))  # fmt: skip
            assert (code, out.strip()) == (0, '{"stream_id": "s1", "version": 0}'), err
            code, _, err = await gater("version", "s1", *direct)  # no client certificate: refused
            assert code == EXIT_UNAVAILABLE, err


POLICY = """
[principals]
"key:app" = ["{role}"]

[roles.reader]
rules = [{{ stores = ["*"], streams = ["*"], operations = ["read"] }}]

[roles.writer]
rules = [{{ stores = ["*"], streams = ["*"], operations = ["read", "append"] }}]
"""


async def test_sighup_reads_the_policy_again(tmp_path: Path, pki: Path) -> None:
    keys, policy = tmp_path / "keys.toml", tmp_path / "policy.toml"
    key = await add_key(keys, "app")
    policy.write_text(POLICY.format(role="reader"))
    node = GaterProcess(
        "node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
        "--tls-cert", str(pki / "node.crt"), "--tls-key", str(pki / "node.key"),
        "--api-keys", str(keys), "--policy", str(policy),
    )  # fmt: skip
    async with node:
        addr = ["--addr", node.address, "--ca-file", str(pki / "ca.crt")]
        env = {"GATER_API_KEY": key}
        code, _, err = await gater("append", "s1", "--type", "t", "--data", "{}", *addr, env=env)
        assert code == EXIT_REFUSED and "PERMISSION_DENIED" in err and "append" in err

        # The new policy under the old modification time: only the signal can make it count.
        stamp = policy.stat()
        policy.write_text(POLICY.format(role="writer"))
        os.utime(policy, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
        seen = len(node.log)
        assert node.proc is not None
        node.proc.send_signal(signal.SIGHUP)
        await node.logged("reloaded certificates, policy and keys (SIGHUP)", after=seen)

        code, _, err = await gater("append", "s1", "--type", "t", "--data", "{}", *addr, env=env)
        assert code == 0, err
        assert node.proc.returncode is None  # SIGHUP did not stop it


async def test_limits_from_flags_reach_the_node(tmp_path: Path) -> None:
    code, _, err = await gater("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "bad"),
                               "--max-event-bytes", str(64 * 1024 * 1024))  # fmt: skip
    assert code == 1 and "--max-event-bytes" in err
    node = GaterProcess("node", "--listen", "127.0.0.1:0", "--data-dir", str(tmp_path / "data"),
                        "--max-events-per-append", "2")  # fmt: skip
    async with node, await Client.connect(node.address) as client:
        await client.append_events("", "s", [{"event_type": "t", "data": {}}] * 2)
        with pytest.raises(LimitExceededError, match="max_events_per_append"):
            await client.append_events("", "s", [{"event_type": "t", "data": {}}] * 3)
