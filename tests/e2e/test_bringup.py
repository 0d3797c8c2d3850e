"""Zero-touch bring-up: the rendered config, started as-is on loopback nodes (one per pod), becomes one
healthy cluster with no manual step (DESIGN.md sections 1 and 3b)."""

from __future__ import annotations

import json
import re
import time

from tests.e2e.harness import FAKE_KUBE_NEEDS, audit_file_path, wait_until

IP_BASE = "127.0.10.11"  # this file's loopback range: files run in parallel

BOOTSTRAP_LOG = "this node self-initialises the cluster"
TOKEN_RE = re.compile(r"\b(?:hvs|s|b|r)\.[A-Za-z0-9]{20,}\b")



def test_zero_touch_bringup(make_cluster):
    started = time.monotonic()
    cluster = make_cluster(mode="script", ip_base=IP_BASE)  # every pod the render declares
    cluster.start()  # all pods at once, through the rendered start.sh (Parallel pod management)

    cluster.wait_unsealed(timeout=120)
    leader = cluster.wait_leader(timeout=30)

    # one cluster, not three: every node reports the same cluster id
    n = len(cluster.nodes)
    assert n >= 3, "an HA render has at least 3 pods"
    ids = cluster.cluster_ids()
    assert len(ids) == n and None not in ids.values() and len(set(ids.values())) == 1, ids

    # exactly one node took the self-init path, and it is the designated one
    bootstrapped = [n.name for n in cluster.nodes if BOOTSTRAP_LOG in n.log_text()]
    designated = cluster.nodes[0].env.get("BAO_SELF_INIT_NODE")
    assert bootstrapped == [designated], bootstrapped

    # the admin user from self-init logs in (password read from the mounted file)
    token = cluster.login_userpass()
    assert token

    # every pod a voter, autopilot healthy
    state = cluster.wait_voters_healthy(token, count=n, timeout=90)
    assert sorted(state["voters"]) == sorted(n.name for n in cluster.nodes)
    peers = cluster.raft_peers(token)
    assert sorted(p["node_id"] for p in peers) == sorted(n.name for n in cluster.nodes)
    assert all(p["voter"] for p in peers)

    # the admin policy works on KV v2 at secret/
    leader = cluster.wait_leader()
    put = leader.request("POST", "secret/data/e2e/bringup", {"data": {"answer": "42"}}, token=token)
    assert put.status == 200, put.body
    got = leader.request("GET", "secret/data/e2e/bringup", token=token)
    assert got.status == 200 and got.body["data"]["data"] == {"answer": "42"}, got.body

    # self-init settings are in place
    autopilot = leader.request("GET", "sys/storage/raft/autopilot/configuration", token=token)
    assert autopilot.body["data"]["server_stabilization_time"] == "3s", autopilot.body
    backup = leader.request("GET", "sys/policies/acl/backup", token=token)
    assert backup.status == 200 and "sys/storage/raft/snapshot" in backup.body["data"]["policy"]
    audit = leader.request("GET", "sys/audit", token=token)
    assert audit.status == 200 and any(v["type"] == "file" for v in audit.body["data"].values()), audit.body

    # the declarative audit device writes on the active node: our login and KV write are there
    audit_path = leader.path(audit_file_path(cluster.rendered.server))

    def audit_has_kv_write():
        if not audit_path.exists():
            return False
        entries = [json.loads(line) for line in audit_path.read_text().splitlines() if line.strip()]
        return any(e.get("request", {}).get("path") == "secret/data/e2e/bringup" for e in entries)

    wait_until(f"audit entry in {audit_path}", audit_has_kv_write, timeout=10)
    assert oct(audit_path.stat().st_mode & 0o777) == oct(0o600)

    # no root token (or any token) is printed by any node; the admin password is not logged
    password = cluster.rendered.admin_password()
    for node in cluster.nodes:
        text = node.log_text()
        assert not TOKEN_RE.search(text), f"{node.name} logged a token"
        assert token not in text and password not in text
        assert "Root Token" not in text
    assert "root token generated" in cluster.node(designated).log_text()

    # service registration (fake Kubernetes API): the leader pod is labelled active
    assert cluster.kube_api is not None, FAKE_KUBE_NEEDS

    def labels_settled():
        leader_now = cluster.wait_leader()
        labels = {n.name: cluster.kube_api.labels(n.name) for n in cluster.nodes}
        ok = all(
            labels[n.name].get("openbao-active") == ("true" if n is leader_now else "false")
            and labels[n.name].get("openbao-sealed") == "false"
            and labels[n.name].get("openbao-initialized") == "true"
            for n in cluster.nodes)
        return labels if ok else None

    wait_until("openbao-active label on the leader only", labels_settled, timeout=30)

    elapsed = time.monotonic() - started
    print(f"\nbring-up to {n} healthy voters + checks: {elapsed:.1f}s (kube={cluster.kube_mode})")
