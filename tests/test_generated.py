"""What the build makes of proto/: generated/ is what `make proto` makes today (regenerate and
compare), and the wheel carries the .proto files that clients in other languages need."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import REPO


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(REPO / "scripts" / "gen_proto.sh"), sys.executable, str(tmp_path)],
        check=True,
        capture_output=True,
    )
    fresh = {p.relative_to(tmp_path): p.read_bytes() for p in (tmp_path / "exesdb").rglob("*") if p.is_file()}
    committed = {
        p.relative_to(REPO / "generated"): p.read_bytes()
        for p in (REPO / "generated" / "exesdb").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert sorted(map(str, fresh)) == sorted(map(str, committed)), "files differ: run `make proto`"
    stale = [str(name) for name, data in fresh.items() if committed[name] != data]
    assert stale == [], f"generated/ is stale, run `make proto`: {stale}"


# -- the wheel: what users of other languages get ------------------------------------------------

PROTOS = [
    "exesdb/v1/cluster.proto", "exesdb/v1/snapshots.proto", "exesdb/v1/stores.proto",
    "exesdb/v1/streams.proto", "exesdb/v1/subscriptions.proto", "exesdb/v1/types.proto",
    # What a client in another language needs to decode error details and to ask for health.
    "google/rpc/status.proto", "google/rpc/error_details.proto", "grpc/health/v1/health.proto",
]  # fmt: skip
PROTO_DIR_IN_WHEEL = "exesdb_gater-0.1.0.data/data/share/exesdb-gater/proto/"


def test_the_standard_protos_are_the_ones_the_servers_use(tmp_path: Path) -> None:
    """proto/google and proto/grpc are verbatim copies: google.rpc's from the installed
    googleapis-common-protos; health.proto compiles to the descriptor grpcio-health-checking serves."""
    import google.rpc
    from google.protobuf import descriptor_pb2
    from grpc_health.v1 import health_pb2

    installed = Path(google.rpc.__path__[0])
    for name in ("status.proto", "error_details.proto"):
        assert (REPO / "proto/google/rpc" / name).read_bytes() == (installed / name).read_bytes(), name
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-I", str(REPO / "proto"), f"--descriptor_set_out={tmp_path / 'h.binpb'}",
         "grpc/health/v1/health.proto"],
        check=True,
    )  # fmt: skip
    (compiled,) = descriptor_pb2.FileDescriptorSet.FromString((tmp_path / "h.binpb").read_bytes()).file
    served = descriptor_pb2.FileDescriptorProto()
    health_pb2.DESCRIPTOR.CopyToProto(served)
    served.name = compiled.name  # grpcio-health-checking compiles it from grpc_health/v1/
    _without_json_names(compiled.message_type)  # protoc fills them in descriptor sets only
    assert compiled == served


def _without_json_names(messages: Any) -> None:
    for message in messages:
        for f in message.field:
            f.ClearField("json_name")
        _without_json_names(message.nested_type)


def test_the_wheel_carries_the_protos_the_license_and_no_codegen_at_run_time(tmp_path: Path) -> None:
    import shutil
    import zipfile

    source = tmp_path / "src"  # a copy: building in the work tree would leave build/ there
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    for folder in ("gater", "generated", "proto"):
        shutil.copytree(REPO / folder, source / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        metadata = z.read("exesdb_gater-0.1.0.dist-info/METADATA").decode()
        shipped = {p: z.read(PROTO_DIR_IN_WHEEL + p) for p in PROTOS if PROTO_DIR_IN_WHEEL + p in names}
    assert sorted(shipped) == sorted(PROTOS)
    assert all(data == (REPO / "proto" / p).read_bytes() for p, data in shipped.items())
    assert "exesdb_gater-0.1.0.dist-info/licenses/LICENSE" in names
    requires = [line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    assert not any(r.startswith("grpcio-tools") for r in runtime), runtime
    assert any(r.startswith("grpcio-tools") and 'extra == "proto"' in r for r in requires), requires
    assert any(r.startswith("prometheus-client") for r in runtime)  # kept for the observability work
