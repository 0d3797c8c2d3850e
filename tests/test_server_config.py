"""Server config (pure) and the start script's bootstrap gate."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from openbao_platform.server_config import (
    config_files,
    initialize_config,
    pod_environment,
    server_config,
    start_script,
)
from tests.support.cluster import stack_spec
from tests.support.program import ProgramRun, stack_config

PROD = stack_spec(stack_config("prod"), "prod")
DEV = stack_spec(stack_config("dev"), "dev")


def _named_blocks(config: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every named block body (a body with one object-valued key is flattened by the HCL-JSON reader)."""
    bodies = []
    for device in config.get("audit", []):
        for typ, by_path in device.items():
            bodies += [(f"audit {typ} {p}", body) for p, body in by_path.items()]
    for block in config.get("initialize", []):
        for name, body in block.items():
            bodies.append((f"initialize {name}", body))
            for req in body["request"]:
                bodies += [(f"request {n}", b) for n, b in req.items()]
    return bodies


def test_listener_is_tls_with_cert_key_and_min_version() -> None:
    tcp = server_config(PROD)["listener"][0]["tcp"]
    assert tcp["tls_disable"] is False
    assert tcp["tls_cert_file"] == "/openbao/tls/tls.crt" and tcp["tls_key_file"] == "/openbao/tls/tls.key"
    assert tcp["tls_min_version"] == "tls12"
    assert tcp["tls_auto_reload"] is True and tcp["tls_auto_reload_interval"] == "10s"  # >= 5s minimum
    tls13 = stack_spec({**stack_config("dev"), "tlsMinVersion": "tls13"}, "dev")
    assert server_config(tls13)["listener"][0]["tcp"]["tls_min_version"] == "tls13"


def test_retry_join_one_verified_block_per_peer() -> None:
    joins = server_config(PROD)["storage"]["raft"]["retry_join"]
    assert len(joins) == PROD.replicas == 5
    for i, j in enumerate(joins):
        host = f"openbao-{i}.openbao-internal.openbao.svc"
        assert j == {"leader_api_addr": f"https://{host}:8200", "leader_ca_cert_file": "/openbao/tls/ca.crt",
                     "leader_tls_servername": host}


def test_raft_tuning_and_no_removed_fields() -> None:
    cfg = server_config(PROD)
    assert cfg["storage"]["raft"]["performance_multiplier"] == 1
    text = json.dumps(cfg)
    assert "disable_mlock" not in text and "node_id" not in text  # node id comes from BAO_RAFT_NODE_ID


def test_static_seal_reads_a_file() -> None:
    seal = server_config(PROD)["seal"]["static"]
    assert seal == {"current_key_id": "unseal-v1", "current_key": "file:///openbao/unseal/unseal-v1"}


def test_service_registration_and_telemetry() -> None:
    cfg = server_config(PROD)
    assert cfg["service_registration"] == {"kubernetes": {"namespace": "openbao"}}
    assert cfg["telemetry"]["disable_hostname"] is True
    assert cfg["listener"][0]["tcp"]["telemetry"] == {"unauthenticated_metrics_access": True}
    assert "telemetry" not in server_config(DEV)["listener"][0]["tcp"]  # monitoring off in dev


def _devices(settings: Any) -> dict[str, dict[str, Any]]:
    return {name: body for d in server_config(settings)["audit"] for name, body in d["file"].items()}


def test_audit_devices_follow_settings() -> None:
    prod, dev = _devices(PROD), _devices(DEV)
    assert [n.split("-")[0] for n in prod] == ["file", "stdout"]  # two devices (docs/runbook-full-volumes.md)
    assert [n.split("-")[0] for n in dev] == ["file", "stdout"]
    file_dev = prod[next(n for n in prod if n.startswith("file"))]
    assert file_dev["options"] == {"file_path": "/openbao/audit/audit.log", "mode": "0600"}
    only_file = _devices(stack_spec({**stack_config("prod"), "audit": {"file": True, "stdout": False}}, "prod"))
    assert [n.split("-")[0] for n in only_file] == ["file"]
    assert dev[next(n for n in dev if n.startswith("stdout"))]["options"] == {"file_path": "stdout"}


def test_audit_default_is_a_file_and_a_stdout_device() -> None:
    """A stack that says nothing about audit gets a second device off the audit volume."""
    devices = _devices(stack_spec({k: v for k, v in stack_config("dev").items() if k != "audit"}, "dev"))
    assert sorted(d["options"]["file_path"] for d in devices.values()) == ["/openbao/audit/audit.log", "stdout"]


def test_audit_option_change_renames_the_device() -> None:
    """OpenBao never activates a node whose declared device options differ from the stored ones."""
    from openbao_platform.server_config import audit_device_name

    same = audit_device_name("file", {"file_path": "/a", "mode": "0600"})
    assert same == audit_device_name("file", {"mode": "0600", "file_path": "/a"})
    assert same != audit_device_name("file", {"file_path": "/a", "mode": "0640"})
    assert list(_devices(PROD)) == list(_devices(PROD))  # stable across renders


@pytest.mark.parametrize("settings", [PROD, DEV], ids=["prod", "dev"])
def test_named_blocks_have_two_or_more_keys(settings: Any) -> None:
    blocks = _named_blocks(server_config(settings)) + _named_blocks(initialize_config(settings))
    assert blocks
    for name, body in blocks:
        only_object = len(body) == 1 and isinstance(next(iter(body.values())), dict)
        assert not only_object, f"{name} has a single object-valued key and would be misread"


def test_self_init_requests() -> None:
    init = initialize_config(PROD)["initialize"]
    requests = {n: r for block in init for body in block.values() for req in body["request"] for n, r in req.items()}
    assert requests["enable-kv"]["path"] == "sys/mounts/secret"
    assert requests["admin-user"]["data"]["password"] == {
        "eval_type": "string", "eval_source": "file", "path": "/openbao/init/admin-password"}
    assert requests["kubernetes-role-admin"]["data"]["bound_service_account_names"] == ["openbao-admin"]
    assert requests["kubernetes-role-admin"]["data"]["bound_service_account_namespaces"] == ["openbao"]
    assert requests["kubernetes-role-backup"]["data"]["token_policies"] == ["backup"]
    assert json.loads(requests["policy-backup"]["data"]["policy"]) == {  # snapshot, and write the drill's canary
        "path": {"sys/storage/raft/snapshot": {"capabilities": ["read"]},
                 "secret/data/openbao-platform/backup-canary": {"capabilities": ["create", "update"]}}}
    assert requests["autopilot-config"]["data"]["server_stabilization_time"] == "3s"
    assert requests["kubernetes-config"]["data"]["kubernetes_ca_cert"]["eval_source"] == "file"


def test_self_init_switches() -> None:
    off = stack_spec({"selfInit": {"enabled": False}, "backup": {"enabled": False}})
    assert "initialize.json" not in config_files(off)
    assert pod_environment(off, 0)["BAO_SELF_INIT_NODE"] == ""
    no_userpass = stack_spec({"selfInit": {"userpassAdmin": False}})
    assert "userpass" not in json.dumps(initialize_config(no_userpass))
    no_backup = stack_spec({"backup": {"enabled": False}})
    assert "kubernetes-role-backup" not in json.dumps(initialize_config(no_backup))


def test_config_map_holds_no_secret_material(prod_run: ProgramRun) -> None:
    cm = json.dumps(prod_run.object("ConfigMap", "openbao-config")["data"])
    password = prod_run.object("Secret", "openbao-init")["stringData"]["admin-password"]
    key_b64 = prod_run.object("Secret", "openbao-unseal")["data"]["unseal-v1"]
    tls_key = prod_run.object("Secret", "openbao-tls")["stringData"]["tls.key"]
    assert password not in cm and key_b64 not in cm and "PRIVATE KEY" not in cm
    assert tls_key.splitlines()[1] not in cm


def test_pod_environment_identity() -> None:
    env = pod_environment(PROD, 2)
    assert env["BAO_RAFT_NODE_ID"] == "openbao-2"
    assert env["BAO_API_ADDR"] == "https://openbao-2.openbao-internal.openbao.svc:8200"
    assert env["BAO_CLUSTER_ADDR"] == "https://openbao-2.openbao-internal.openbao.svc:8201"
    assert env["BAO_SELF_INIT_NODE"] == "openbao-0"
    peers = env["BAO_SELF_INIT_PEERS"].split()
    assert len(peers) == 4 and peers[0] == (
        "openbao-1.openbao-internal.openbao.svc,https://openbao-1.openbao-internal.openbao.svc:8200")


# --- the bootstrap gate, driven by a stand-in `bao` that answers per peer -------------

FAKE_BAO = r"""#!/bin/sh
# Stand-in for `bao`: `read` answers sys/init per peer from $FAKE_PEERS; `server` records args.
if [ "$1" = "read" ]; then
  state=$(grep "^$BAO_TLS_SERVER_NAME " "$FAKE_PEERS" | cut -d' ' -f2)
  if [ "$state" = "flaky" ]; then
    marker="$FAKE_DIR/flaky-$BAO_TLS_SERVER_NAME"
    if [ -e "$marker" ]; then state=uninitialised; else touch "$marker"; state=unreachable; fi
  fi
  case "$state" in
    initialised) echo true ;;
    uninitialised) echo false ;;
    *) echo "dial tcp: connection refused" >&2; exit 2 ;;
  esac
  exit 0
fi
if [ "$1" = "server" ]; then shift; echo "$*" > "$FAKE_DIR/server-args"; exit 0; fi
exit 1
"""


def run_gate(tmp_path: Path, pod: str, peers: dict[str, str], data_files: tuple[str, ...] = (),
             bootstrap_node: str = "openbao-0") -> tuple[str, str]:
    """Run start.sh for ``pod``; return (server args, stderr)."""
    bao = tmp_path / "bao"
    bao.write_text(FAKE_BAO)
    bao.chmod(0o755)
    (tmp_path / "peers").write_text("".join(f"{n} {s}\n" for n, s in peers.items()))
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    for f in data_files:
        (data / f).parent.mkdir(parents=True, exist_ok=True)
        (data / f).write_text("x")
    script = tmp_path / "start.sh"
    script.write_text(start_script())
    env = {"PATH": os.environ["PATH"], "BAO_BINARY": str(bao), "FAKE_PEERS": str(tmp_path / "peers"),
           "FAKE_DIR": str(tmp_path), "BAO_CONFIG_DIR": "/cfg", "BAO_DATA_DIR": str(data),
           "BAO_SELF_INIT_NODE": bootstrap_node, "BAO_K8S_POD_NAME": pod, "BAO_SELF_INIT_PEER_WAIT": "0",
           "BAO_SELF_INIT_PEERS": " ".join(f"{n},https://{n}:8200" for n in peers)}
    proc = subprocess.run(["sh", str(script)], env=env, capture_output=True, text=True, timeout=20)
    assert proc.returncode == 0, proc.stderr
    return (tmp_path / "server-args").read_text().strip(), proc.stderr


WITH_INIT = "-config=/cfg/server.json -config=/cfg/initialize.json"
WITHOUT_INIT = "-config=/cfg/server.json"


def test_gate_bootstraps_when_every_peer_is_uninitialised(tmp_path: Path) -> None:
    args, log = run_gate(tmp_path, "openbao-0", {"p1": "uninitialised", "p2": "uninitialised"})
    assert args == WITH_INIT and "self-initialises" in log


def test_gate_joins_when_any_peer_is_initialised(tmp_path: Path) -> None:
    args, log = run_gate(tmp_path, "openbao-0", {"p1": "uninitialised", "p2": "initialised"})
    assert args == WITHOUT_INIT and "joining the existing cluster" in log


def test_gate_waits_for_unreachable_peers(tmp_path: Path) -> None:
    args, log = run_gate(tmp_path, "openbao-0", {"p1": "flaky", "p2": "uninitialised"})
    assert args == WITH_INIT
    assert "no answer from: p1" in log


def test_gate_never_bootstraps_on_other_pods(tmp_path: Path) -> None:
    args, _ = run_gate(tmp_path, "openbao-1", {"p1": "uninitialised", "p2": "uninitialised"})
    assert args == WITHOUT_INIT


def test_gate_skips_self_init_with_existing_storage(tmp_path: Path) -> None:
    args, log = run_gate(tmp_path, "openbao-0", {"p1": "uninitialised"}, data_files=("vault.db",))
    assert args == WITHOUT_INIT and "storage exists" in log


def test_gate_single_node_bootstraps(tmp_path: Path) -> None:
    args, _ = run_gate(tmp_path, "openbao-0", {})
    assert args == WITH_INIT


def test_gate_disabled_when_no_bootstrap_node(tmp_path: Path) -> None:
    args, _ = run_gate(tmp_path, "openbao-0", {}, bootstrap_node="")
    assert args == WITHOUT_INIT
