"""The deployment files, checked without a cluster or Docker.

Covers: deploy/k8s validates offline against the Kubernetes schemas (kubernetes-validate
bundles them; strict: unknown fields fail); every pod is hardened (non-root, read-only root
filesystem, no privilege escalation, resources, probes on /readyz and /livez, Prometheus
scrape annotations on the metrics port) and every Deployment has a PodDisruptionBudget; every
Secret key the pods read exists in the templated Secret; deploy/docker-compose.yml is valid
YAML with one image build, Consul, PostgreSQL, three nodes, two gateways, Prometheus (config
file scraping every node and gateway) and Grafana (datasource and dashboard provisioned, the
dashboard's queries naming metric families gater exports); every `gater …` command line in
compose and the manifests parses with the real CLI; and the manifest's gateway flags find the
nodes' headless service from a short name through a Kubernetes-style resolv.conf and a DNS
server the test serves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from gater.cli import main as gater_cli
from gater.gateway.discovery import DnsDiscovery, DnsDiscoveryConfig
from tests.gateway.dns_double import serve_dns

pytestmark = pytest.mark.timeout(60)

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes release the manifests promise to work on


def k8s_resources() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [r for r in k8s_resources() if r["kind"] == kind]


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def gater_image(image: str) -> bool:
    return image.split(":")[0] == "exesdb-gater"


def gater_command_lines() -> list[tuple[str, list[str]]]:
    """(where, argv after `gater`) of every gater process the deployment files start."""
    lines = []
    for name, service in compose()["services"].items():
        if gater_image(service.get("image", "")):
            lines.append((f"compose {name}", [str(a) for a in service["command"]]))
    for deployment in of_kind("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            if gater_image(container["image"]):
                lines.append((f"k8s {deployment['metadata']['name']}", [str(a) for a in container["args"]]))
    return lines


def parse(argv: list[str]) -> click.Context:
    """`gater argv…` parsed by the real CLI (flags, types, choices), without running it."""
    command_name, *rest = argv
    parent = click.Context(gater_cli, info_name="gater")
    command = gater_cli.get_command(parent, command_name)
    assert command is not None, f"no command {command_name!r}"
    return command.make_context(command_name, rest, parent=parent)


# -- the CLI check ------------------------------------------------------------------------------


@pytest.mark.parametrize(("where", "argv"), gater_command_lines(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_gater_command_line_parses_with_the_cli(where: str, argv: list[str], monkeypatch) -> None:
    for var in ("GATER_WORKERS", "GATER_METRICS_LISTEN"):  # the machine's environment stays out
        monkeypatch.delenv(var, raising=False)
    if argv == ["--version"]:  # the compose service that builds the image
        with pytest.raises(click.exceptions.Exit) as exit_:
            gater_cli.make_context("gater", argv)
        assert exit_.value.exit_code == 0
        return
    parse(argv)  # raises click.UsageError (unknown flag, bad value) otherwise


def test_the_check_catches_a_flag_the_cli_does_not_know() -> None:
    with pytest.raises(click.NoSuchOption):
        parse(["gateway", "--dns", "gater-nodes", "--dns-prot", "50051"])


# -- Kubernetes ---------------------------------------------------------------------------------


def test_k8s_manifests_validate_offline_against_the_kubernetes_schemas() -> None:
    kinds = set()
    for resource in k8s_resources():
        kubernetes_validate.validate(resource, K8S_VERSION, strict=True)
        kinds.add(resource["kind"])
    assert {"Deployment", "Service", "PodDisruptionBudget", "Secret"} <= kinds


def test_the_validation_rejects_an_unknown_field() -> None:
    deployment = of_kind("Deployment")[0]
    deployment["spec"]["template"]["spec"]["containers"][0]["readOnlyRootFs"] = True
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def metrics_port(argv: list[str]) -> int:
    return int(argv[argv.index("--metrics-listen") + 1].rsplit(":", 1)[1])


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_k8s_pods_are_hardened_sized_probed_and_scraped(deployment: dict[str, Any]) -> None:
    template = deployment["spec"]["template"]
    pod = template["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"]["drop"] == ["ALL"]
        assert {"cpu", "memory"} <= set(container["resources"]["requests"])
        assert {"cpu", "memory"} <= set(container["resources"]["limits"])
        port = metrics_port(container["args"])
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        assert named["metrics"] == port
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
        assert container["livenessProbe"]["httpGet"] == {"path": "/livez", "port": "metrics"}
        annotations = template["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"
    labels = template["metadata"]["labels"]
    budgets = [
        b
        for b in of_kind("PodDisruptionBudget")
        if b["spec"]["selector"]["matchLabels"].items() <= labels.items()
    ]
    assert len(budgets) == 1, "one PodDisruptionBudget per Deployment"
    assert budgets[0]["spec"]["minAvailable"] < deployment["spec"]["replicas"]


def test_every_secret_key_the_pods_read_is_in_the_templated_secret() -> None:
    secrets = {s["metadata"]["name"]: set(s["stringData"]) for s in of_kind("Secret")}
    refs = [
        env["valueFrom"]["secretKeyRef"]
        for deployment in of_kind("Deployment")
        for container in deployment["spec"]["template"]["spec"]["containers"]
        for env in container.get("env", [])
        if "secretKeyRef" in env.get("valueFrom", {})
    ]
    assert refs
    for ref in refs:
        assert ref["key"] in secrets.get(ref["name"], set()), ref


# What kubelet writes into a pod of namespace "gater" (the manifests name no namespace).
POD_RESOLV_CONF = """\
search gater.svc.cluster.local svc.cluster.local cluster.local
nameserver 10.96.0.10
options ndots:5
"""


async def test_the_manifest_gateway_flags_find_the_nodes_through_the_pod_resolv_conf(tmp_path: Path) -> None:
    """`--dns gater-nodes` is a short name: the cluster DNS knows only the namespaced one."""
    (argv,) = [argv for where, argv in gater_command_lines() if where.startswith("k8s") and argv[0] == "gateway"]
    (headless,) = [s for s in of_kind("Service") if s["spec"].get("clusterIP") == "None"]
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text(POD_RESOLV_CONF)
    async with serve_dns() as (server, port):
        # The pod's resolv.conf is the one at the default path; the test's server stands in
        # for the cluster DNS (resolv.conf cannot name a port).
        params = parse([*argv, "--dns-resolv-conf", str(resolv_conf), "--dns-server", f"127.0.0.1:{port}"]).params
        assert params["dns_name"] == headless["metadata"]["name"]
        assert params["dns_port"] == headless["spec"]["ports"][0]["port"]
        server.records[("gater-nodes.gater.svc.cluster.local.", params["dns_kind"].upper())] = [
            "10.1.0.4",
            "10.1.0.5",
            "10.1.0.6",
        ]
        host, _, server_port = params["dns_server"].rpartition(":")
        config = DnsDiscoveryConfig(
            name=params["dns_name"],
            port=params["dns_port"],
            kind=params["dns_kind"].upper(),
            nameservers=(host,),
            nameserver_port=int(server_port),
            resolv_conf=params["dns_resolv_conf"],
        )
        async with DnsDiscovery(config) as discovery:
            assert discovery.ok
            assert {m.address for m in discovery.members()} == {"10.1.0.4:50051", "10.1.0.5:50051", "10.1.0.6:50051"}


# -- compose, Prometheus, Grafana -----------------------------------------------------------------


def test_compose_builds_one_image_for_three_nodes_and_two_gateways() -> None:
    services = compose()["services"]
    assert {"postgres", "consul", "node-1", "node-2", "node-3", "gateway-1", "gateway-2", "prometheus", "grafana"} <= set(
        services
    )
    built = [name for name, s in services.items() if "build" in s]
    assert len(built) == 1, f"one image build, not {built}"
    image = services[built[0]]["image"]
    runs = [name for name, s in services.items() if s.get("image") == image and name not in built]
    assert sorted(runs) == ["gateway-1", "gateway-2", "node-1", "node-2", "node-3"]
    for name in runs:
        assert services[name]["pull_policy"] == "never"
        assert services[name]["depends_on"][built[0]] == {"condition": "service_completed_successfully"}
        assert metrics_port(services[name]["command"])


def test_prometheus_scrapes_every_node_and_gateway() -> None:
    services = compose()["services"]
    (mount,) = services["prometheus"]["volumes"]
    config = yaml.safe_load((DEPLOY / mount.split(":")[0]).read_text())
    targets = {t for job in config["scrape_configs"] for sc in job["static_configs"] for t in sc["targets"]}
    expected = {
        f"{name}:{metrics_port(s['command'])}"
        for name, s in services.items()
        if name.startswith(("node-", "gateway-"))
    }
    assert targets == expected


def exported_families() -> set[str]:
    """Every metric family name gater's source defines."""
    names = set()
    for path in (ROOT / "gater").rglob("*.py"):
        names |= set(re.findall(r'"((?:gater|grpc_server)_[a-z_]+)"', path.read_text()))
    return names


def test_grafana_provisions_the_datasource_and_a_dashboard_of_real_series() -> None:
    grafana = compose()["services"]["grafana"]
    mounts = {v.split(":")[1]: DEPLOY / v.split(":")[0] for v in grafana["volumes"]}
    provisioning = mounts["/etc/grafana/provisioning"]
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "gater.yml").read_text())["providers"]
    dashboards = mounts[provider["options"]["path"]]
    dashboard = json.loads((dashboards / "gater.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for shown in ("appends", "lag", "pool members", "error rate"):
        assert shown in titles
    families = exported_families()
    for expr in exprs:
        for series in re.findall(r"\b((?:gater|grpc_server)_[a-z_]+)", expr):
            family = re.sub(r"_(total|bucket|sum|count)$", "", series)
            assert family in families, f"{series} in the dashboard is not a metric gater exports"
