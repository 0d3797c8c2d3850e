"""Static unseal key rotation, docs/runbook-unseal-key-rotation.md step by step, against real
OpenBao. "pulumi up" is a re-render with the runbook's config; pulumi-random keeps an existing
key's bytes in its state, so the test carries the bytes of a key version that already
existed from one render to the next. Also proves the runbook's warning: dropping the previous
key without `sys/rotate/root` seals every node (and putting it back recovers)."""

from __future__ import annotations

import copy
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.e2e.harness import (BaoCluster, BaoNode, Rendered, apply_render, bao_cli, wait_until)
from tools.render import render

IP_BASE = "127.0.16.11"  # this file's loopback range: files run in parallel
ENTRIES = 20
UNSEAL_FAILED = "failed to unseal core"
UNKNOWN_KEY = "failed to decrypt keys from storage: unknown key id for data: `unseal-v1`"
START_MARK = "===== e2e harness: start #"


def _pulumi_up(stack: str, out: Path, overrides: dict, keep_from: Rendered, keep: list[str]) -> Rendered:
    """Render with ``overrides``; key versions in ``keep`` keep their bytes (RandomBytes state)."""
    render(stack, out, overrides)
    for key_id in keep:
        shutil.copy2(keep_from.root / "unseal" / key_id, out / "openbao" / "unseal" / key_id)
    return Rendered.load(out)


def _without_seal(server: dict) -> dict:
    doc = copy.deepcopy(server)
    doc.pop("seal", None)
    return doc


def _log_since_last_start(node: BaoNode) -> str:
    text = node.log_text()
    return text[text.rfind(START_MARK):]


def _wait_unsealed_labels(cluster: BaoCluster) -> None:
    """Runbook step 3 reads the pod label `openbao-sealed` (fake Kubernetes API); else the health."""
    def check() -> bool:
        if cluster.kube_api is not None:
            return all(cluster.kube_api.labels(n.name).get("openbao-sealed") == "false" for n in cluster.nodes)
        return all(n.is_unsealed() for n in cluster.nodes)

    wait_until("openbao-sealed=false on every pod", check, timeout=30, on_timeout=cluster.log_tails)


def _autopilot_healthy(cluster: BaoCluster, token: str) -> bool:
    try:
        state = cluster.autopilot_state(token)
    except Exception:  # no leader for a moment
        return False
    voters = [s for s in state.get("servers", {}).values()
              if s.get("healthy") and s.get("status") in ("leader", "voter")]
    return bool(state.get("healthy")) and len(voters) == len(cluster.nodes)


def _restart_every_node(cluster: BaoCluster, token: str) -> list[str]:
    """runbook-upgrade.md steps 3-5: each standby, one at a time, back Ready and autopilot
    healthy before the next; then the leader steps down and restarts last."""
    leader = cluster.wait_leader()
    standbys = sorted((n for n in cluster.nodes if n is not leader), key=lambda n: n.name)
    for node in standbys:
        node.stop()
        node.start()
        cluster.wait_unsealed([node], timeout=90)
        wait_until(f"autopilot healthy after restarting {node.name}", lambda: _autopilot_healthy(cluster, token),
                   timeout=90, interval=0.5, on_timeout=cluster.log_tails)
    resp = leader.request("PUT", "sys/step-down", token=token)
    assert resp.status == 204, resp.body
    wait_until("a new leader", lambda: any(n.is_active() for n in standbys), timeout=60, on_timeout=cluster.log_tails)
    leader.stop()
    leader.start()
    cluster.wait_unsealed([leader], timeout=90)
    wait_until(f"autopilot healthy after restarting {leader.name}", lambda: _autopilot_healthy(cluster, token),
               timeout=90, interval=0.5, on_timeout=cluster.log_tails)
    return [n.name for n in standbys] + [leader.name]


def _check_data(cluster: BaoCluster, token: str) -> None:
    leader = cluster.wait_leader()
    for i in range(ENTRIES):
        got = leader.request("GET", f"secret/data/e2e/unseal/{i}", token=token)
        assert got.status == 200 and got.body["data"]["data"] == {"i": str(i)}, (i, got.status, got.body)


def test_unseal_key_rotation_runbook(make_cluster, rendered, tmp_path):
    stack = os.environ.get("E2E_STACK", "dev")
    if os.environ.get("E2E_RENDER_DIR") or rendered.server["seal"]["static"].get("current_key_id") != "unseal-v1":
        pytest.fail("this test re-renders E2E_STACK from key version 1: unset E2E_RENDER_DIR (it was given a "
                    "render it cannot re-create)")
    started = time.monotonic()
    cluster = make_cluster(ip_base=IP_BASE)
    cluster.start()
    cluster.wait_unsealed(timeout=120)
    token = cluster.login_userpass()
    leader = cluster.wait_leader()
    for i in range(ENTRIES):
        resp = leader.request("POST", f"secret/data/e2e/unseal/{i}", {"data": {"i": str(i)}}, token=token)
        assert resp.status == 200, resp.body
    wait_until("autopilot healthy", lambda: _autopilot_healthy(cluster, token), timeout=90, interval=0.5,
               on_timeout=cluster.log_tails)

    # 1. keyVersion 2 + previousKeyVersion 1, pulumi up: both files, v2 current, v1 previous
    v2_pair = _pulumi_up(stack, tmp_path / "v2-pair", {"unseal.keyVersion": 2, "unseal.previousKeyVersion": 1},
                         keep_from=rendered, keep=["unseal-v1"])
    assert sorted(p.name for p in (v2_pair.root / "unseal").iterdir()) == ["unseal-v1", "unseal-v2"]
    seal = v2_pair.server["seal"]["static"]
    assert (seal["current_key_id"], seal.get("previous_key_id")) == ("unseal-v2", "unseal-v1"), seal
    assert seal["current_key"].endswith("/unseal-v2") and seal["previous_key"].endswith("/unseal-v1"), seal
    assert (v2_pair.root / "unseal" / "unseal-v2").read_bytes() != (rendered.root / "unseal" / "unseal-v1").read_bytes()
    assert _without_seal(v2_pair.server) == _without_seal(rendered.server)  # only the seal changes
    assert v2_pair.initialize == rendered.initialize
    apply_render(cluster, v2_pair)

    # 2.-3. restart every node (standbys first, leader last); each unseals with the pair
    order = _restart_every_node(cluster, token)
    _wait_unsealed_labels(cluster)
    for node in cluster.nodes:
        assert node.starts == 2 and UNSEAL_FAILED not in _log_since_last_start(node), node.name
    _check_data(cluster, token)

    # The runbook's warning, proven: drop the previous key WITHOUT step 4 and restart.
    v2_only = _pulumi_up(stack, tmp_path / "v2-only", {"unseal.keyVersion": 2}, keep_from=v2_pair, keep=["unseal-v2"])
    assert "previous_key_id" not in v2_only.server["seal"]["static"]
    assert sorted(p.name for p in (v2_only.root / "unseal").iterdir()) == ["unseal-v2"]
    apply_render(cluster, v2_only)
    for node in cluster.nodes:
        node.stop()
    for node in cluster.nodes:
        node.start()
    wait_until("every node refusing to unseal (stored keys still wrapped by unseal-v1)",
               lambda: all(UNKNOWN_KEY in _log_since_last_start(n) for n in cluster.nodes),
               timeout=60, on_timeout=cluster.log_tails)
    cluster.assert_alive()
    for node in cluster.nodes:
        health = node.health()
        assert health is not None and health["initialized"] and health["sealed"], (node.name, health)
    # recovery: put the previous key back (pulumi up with the pair again) and restart
    apply_render(cluster, v2_pair)
    for node in cluster.nodes:
        node.stop()
    for node in cluster.nodes:
        node.start()
    cluster.wait_unsealed(timeout=90)
    token = cluster.login_userpass()
    _check_data(cluster, token)

    # 4. re-wrap the stored keys with the new key (admin token, the runbook's CLI command)
    rotate = bao_cli(cluster.wait_leader(), "write", "-f", "sys/rotate/root", token=token)
    assert rotate.returncode == 0, rotate.stderr

    # 5. drop the old key: pulumi up without previousKeyVersion
    apply_render(cluster, v2_only)
    for node in cluster.nodes:
        assert sorted(p.name for p in node.path("/openbao/unseal").iterdir()) == ["unseal-v2"], node.name
        assert "unseal-v1" not in (node.config_dir / "server.json").read_text(), node.name

    # 6. restart every node again: all unseal with unseal-v2 alone, data intact
    wait_until("autopilot healthy", lambda: _autopilot_healthy(cluster, token), timeout=90, interval=0.5,
               on_timeout=cluster.log_tails)
    _restart_every_node(cluster, token)
    _wait_unsealed_labels(cluster)
    for node in cluster.nodes:
        assert UNSEAL_FAILED not in _log_since_last_start(node), node.name
    token = cluster.login_userpass()
    _check_data(cluster, token)
    ids = cluster.cluster_ids()
    assert len(set(ids.values())) == 1 and None not in ids.values(), ids
    print(f"\nunseal key v1 -> v2 rotated per runbook (restart order {order}) in {time.monotonic() - started:.1f}s")
