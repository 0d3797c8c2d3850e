"""Bad inputs fail loudly and locally: a corrupted unseal key, a server certificate whose SANs do
not match the pod's name, and a CA that did not sign the peers. In each case the affected node
fails with a clear error in its log, it never joins (or forks) anything, the rest of the cluster
keeps serving its data, and once the input is fixed the node comes back with no other step
(DESIGN.md sections 3 and 3b; /work/notes/bao_facts.md sections 1-3)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Optional

from tests.e2e.certs import TestCA, cert_sans
from tests.e2e.harness import API_PORT, BaoCluster, BaoNode, https_request, wait_until

IP_BASE = "127.0.12.11"  # this file's loopback range (fake Kubernetes API on 127.0.12.10)
START_MARK = "===== e2e harness: start #"
SEAL_ERROR = 'Error configuring seal "static": unknown encoding for AES-256 key'


# ----------------------------------------------------------------------------------------
# helpers


def _since_last_start(node: BaoNode) -> str:
    return node.log_text().rsplit(START_MARK, 1)[-1]


def _healthy_cluster(cluster: BaoCluster) -> tuple[str, str]:
    """Start every node, wait for all voters healthy; returns (admin token, cluster id)."""
    token = cluster.start_healthy()
    return token, cluster.wait_leader().health()["cluster_id"]


def _write(node: BaoNode, token: str, entries: dict[str, dict[str, str]]) -> None:
    for key, data in entries.items():
        resp = node.request("POST", f"secret/data/{key}", {"data": data}, token=token, timeout=15)
        assert resp.status == 200, (node.name, key, resp.status, resp.body)


def _assert_data(cluster: BaoCluster, token: str, entries: dict[str, dict[str, str]]) -> None:
    leader = cluster.wait_leader(timeout=60)
    for key, data in entries.items():
        resp = leader.request("GET", f"secret/data/{key}", token=token, timeout=15)
        assert resp.status == 200 and resp.body["data"]["data"] == data, (leader.name, key, resp.status, resp.body)


def _standby_to_break(cluster: BaoCluster) -> BaoNode:
    """A running standby that is not the designated bootstrap node (so its start.sh never
    considers self-init)."""
    leader = cluster.wait_leader()
    designated = cluster.nodes[0].env.get("BAO_SELF_INIT_NODE")
    return next(n for n in cluster.nodes if n is not leader and n.name != designated)


def _ca_paths(cluster: BaoCluster, node: BaoNode) -> set[Path]:
    """Every place this node reads the cluster CA from (listener, retry_join, start.sh gate)."""
    server = cluster.rendered.server
    prod = {b["tcp"]["tls_client_ca_file"] for b in server.get("listener", []) if b.get("tcp", {}).get("tls_client_ca_file")}
    prod |= {rj["leader_ca_cert_file"] for rj in server["storage"]["raft"].get("retry_join", []) if rj.get("leader_ca_cert_file")}
    if node.pod.env.get("BAO_SELF_INIT_CACERT"):
        prod.add(node.pod.env["BAO_SELF_INIT_CACERT"])
    assert prod, "the render names no CA file"
    return {node.path(p) for p in prod}


def _server_cert_paths(cluster: BaoCluster, node: BaoNode) -> tuple[Path, Path]:
    tcp = cluster.rendered.server["listener"][0]["tcp"]
    return node.path(tcp["tls_cert_file"]), node.path(tcp["tls_key_file"])


# ----------------------------------------------------------------------------------------
# (a) corrupted unseal key


def test_corrupted_unseal_key_fails_loudly_and_locally(make_cluster):
    cluster = make_cluster(mode="script", ip_base=IP_BASE)
    token, cluster_id = _healthy_cluster(cluster)
    entries = {f"e2e/badkey/{i}": {"v": str(i)} for i in range(20)}
    _write(cluster.wait_leader(), token, entries)

    key_url = cluster.rendered.server["seal"]["static"]["current_key"]
    assert key_url.startswith("file://"), key_url
    victim = _standby_to_break(cluster)
    key_file = victim.path(key_url[len("file://"):])
    good_key = key_file.read_bytes()
    assert len(good_key) == 32, "the render writes the static seal key as 32 raw bytes"

    assert victim.stop(timeout=30) == 0
    others = [n for n in cluster.nodes if n is not victim]
    for label, bad in (("31 bytes", good_key[:31]), ("trailing newline", good_key + b"\n")):
        key_file.write_bytes(bad)
        victim.start()
        wait_until(f"{victim.name} to exit with a {label} key", lambda: not victim.running(), timeout=60,
                   on_timeout=cluster.log_tails)
        log = _since_last_start(victim)
        assert victim.proc.returncode != 0, (label, victim.proc.returncode)
        assert SEAL_ERROR in log, f"{label}: no clear seal error in {victim.name}'s log:\n{log[-3000:]}"

        # the rest of the cluster keeps serving, with all its data, as the same cluster
        cluster.assert_alive(others)
        _assert_data(cluster, token, entries)
        _write(cluster.wait_leader(), token, {f"e2e/badkey/during-{label.replace(' ', '-')}": {"ok": "yes"}})
        assert {n.health()["cluster_id"] for n in others} == {cluster_id}

    # fixed key: the node unseals and is a voter again, no other step
    key_file.write_bytes(good_key)
    victim.start()
    cluster.wait_unsealed([victim], timeout=120)
    cluster.wait_voters_healthy(token, count=len(cluster.nodes), timeout=120)
    assert set(cluster.cluster_ids().values()) == {cluster_id}
    _assert_data(cluster, token, entries)


# ----------------------------------------------------------------------------------------
# (b) a server certificate whose SANs do not match the pod's name


def _request_as(node: BaoNode, server_name: str, method: str, path: str, body: Any = None,
                token: Optional[str] = None):
    """Talk to ``node`` verifying the name its (wrong) certificate really carries."""
    return https_request(node.ip, API_PORT, server_name, node.ca_file, method, "/v1/" + path, body, token, timeout=10)


def test_certificate_not_matching_pod_name_is_refused_by_peers(make_cluster):
    """The designated bootstrap node serves a certificate (signed by the cluster CA) whose SANs
    name other hosts. It bootstraps (its gate checks the peers, whose certificates are fine), but
    no peer can verify it as openbao-0, so none joins it: each logs the x509 name mismatch and
    stays uninitialised. A product that skipped verification, or verified another name, would
    join (or log another name) and fail this test. Fixing the certificate (SIGHUP) lets them join
    the same cluster, with the data written meanwhile."""
    cluster = make_cluster(mode="script", ip_base=IP_BASE)
    bootstrap = cluster.node(cluster.nodes[0].env["BAO_SELF_INIT_NODE"])
    joiners = [n for n in cluster.nodes if n is not bootstrap]

    from cryptography import x509

    # One fresh CA (the render ships no CA key) that every node trusts; every node gets a
    # correct certificate (the rendered SANs) except the bootstrap node, whose SANs are wrong.
    ca = TestCA("openbao e2e CA (SAN test)")
    subject, sans = cert_sans((cluster.rendered.root / "tls" / "tls.crt").read_bytes())
    good = ca.secret_files(*ca.issue(subject, sans))
    wrong_names = ["openbao-0.openbao-internal.openbao-elsewhere.svc", "openbao.example.invalid"]
    assert not any(bootstrap.host.endswith(w.split(".", 1)[1]) for w in wrong_names)
    wrong = ca.secret_files(*ca.issue(subject, x509.SubjectAlternativeName([x509.DNSName(w) for w in wrong_names])))
    for node in cluster.nodes:
        for ca_path in _ca_paths(cluster, node):
            ca_path.write_bytes(ca.pem)
        crt, key = _server_cert_paths(cluster, node)
        files = wrong if node is bootstrap else good
        crt.write_bytes(files["tls.crt"])
        key.write_bytes(files["tls.key"])
    cluster.start()

    # the bootstrap node self-initialises and leads a cluster of one
    def bootstrap_active():
        cluster.assert_alive()
        h = _request_as(bootstrap, wrong_names[0], "GET", "sys/health?standbyok=true&sealedcode=299&uninitcode=298").body
        return h if h.get("initialized") and not h.get("sealed") and not h.get("standby") else None

    health = wait_until(f"{bootstrap.name} active", bootstrap_active, timeout=120, on_timeout=cluster.log_tails)
    cluster_id = health["cluster_id"]
    def login():
        resp = _request_as(bootstrap, wrong_names[0], "POST", "auth/userpass/login/admin",
                           {"password": cluster.rendered.admin_password()})
        return resp.body["auth"]["client_token"] if resp.status == 200 else None

    token = wait_until("admin login on the bootstrap node", login, timeout=60, interval=0.5)
    entries = {f"e2e/badsan/{i}": {"v": str(i)} for i in range(10)}
    for key, data in entries.items():
        put = _request_as(bootstrap, wrong_names[0], "POST", f"secret/data/{key}", {"data": data}, token)
        assert put.status == 200, put.body

    # every joiner refuses it, naming the pod DNS name it expected
    mismatch = re.compile(r"x509: certificate is valid for [^\n]*" + re.escape(wrong_names[0])
                          + r"[^\n]*, not " + re.escape(bootstrap.host))

    def all_refused():
        cluster.assert_alive()
        return all(len(mismatch.findall(n.log_text())) >= 2 for n in joiners)  # seen on a retry too

    wait_until("x509 name-mismatch errors in every joiner's log", all_refused, timeout=90,
               on_timeout=cluster.log_tails)
    for node in joiners:
        h = node.health()
        assert h is not None and h["initialized"] is False, (node.name, h)
    peers = _request_as(bootstrap, wrong_names[0], "GET", "sys/storage/raft/configuration", token=token)
    assert [p["node_id"] for p in peers.body["data"]["config"]["servers"]] == [bootstrap.name], peers.body

    # fix the certificate (SIGHUP reloads it): the others join THIS cluster, data intact
    crt, key = _server_cert_paths(cluster, bootstrap)
    crt.write_bytes(good["tls.crt"])
    key.write_bytes(good["tls.key"])
    bootstrap.hup()
    cluster.wait_unsealed(timeout=120)
    token = cluster.login_userpass(timeout=60)
    cluster.wait_voters_healthy(token, count=len(cluster.nodes), timeout=120)
    assert set(cluster.cluster_ids().values()) == {cluster_id}
    _assert_data(cluster, token, entries)


# ----------------------------------------------------------------------------------------
# (c) a CA that did not sign the peers


def test_node_with_foreign_ca_cannot_join(make_cluster):
    """A node that lost its volume comes back with a ca.crt from another CA: it cannot verify
    any peer during retry_join ("unknown authority"), so it stays uninitialised (it neither
    joins nor bootstraps); the cluster keeps serving. With the right CA it rejoins."""

    cluster = make_cluster(mode="script", ip_base=IP_BASE)
    token, cluster_id = _healthy_cluster(cluster)
    entries = {f"e2e/badca/{i}": {"v": str(i)} for i in range(20)}
    _write(cluster.wait_leader(), token, entries)

    victim = _standby_to_break(cluster)
    assert victim.stop(timeout=30) == 0
    victim.wipe_data()  # a fresh volume: it must join through retry_join
    foreign_ca = TestCA("some other CA")
    ca_paths = _ca_paths(cluster, victim)
    assert cluster.ca_file not in ca_paths, "the harness's own CA file must stay the real one"
    originals = {p: p.read_bytes() for p in ca_paths}
    for p in ca_paths:
        p.write_bytes(foreign_ca.pem)
    victim.start()

    unknown = re.compile(r"x509: certificate signed by unknown authority")
    wait_until(f"'unknown authority' errors in {victim.name}'s log (and a retry)",
               lambda: len(unknown.findall(_since_last_start(victim))) >= 2,
               timeout=90, on_timeout=cluster.log_tails)
    cluster.assert_alive()
    h = victim.health()
    assert h is not None and h["initialized"] is False, h

    # the rest of the cluster keeps its data and keeps writing, as the same cluster
    _assert_data(cluster, token, entries)
    _write(cluster.wait_leader(), token, {"e2e/badca/during": {"ok": "yes"}})
    others = [n for n in cluster.nodes if n is not victim]
    assert {n.health()["cluster_id"] for n in others} == {cluster_id}

    # the right CA: it joins (a restart, as a pod would get when its Secret is fixed)
    assert victim.stop(timeout=30) == 0
    for p, data in originals.items():
        p.write_bytes(data)
    victim.start()
    cluster.wait_unsealed([victim], timeout=120)
    state = cluster.wait_voters_healthy(token, count=len(cluster.nodes), timeout=120)
    assert victim.name in state["voters"]
    assert set(cluster.cluster_ids().values()) == {cluster_id}
    _assert_data(cluster, token, entries)
