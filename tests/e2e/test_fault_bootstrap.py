"""Fault: the designated bootstrap pod loses its volume while its peers run. Its start script
must see an initialised peer and join; it must never bootstrap a second cluster
(openbao/openbao#2274, DESIGN.md section 3)."""

from __future__ import annotations

import time

from tests.e2e.harness import wait_until

IP_BASE = "127.0.11.11"  # this file's loopback range: files run in parallel

JOIN_LOG = "joining the existing cluster, not bootstrapping"


def test_wiped_bootstrap_node_joins_instead_of_forking(make_cluster):
    cluster = make_cluster(mode="script", ip_base=IP_BASE)  # every pod the render declares
    cluster.start()
    cluster.wait_unsealed(timeout=120)
    token = cluster.login_userpass()
    cluster.wait_voters_healthy(token, timeout=90)
    original_id = cluster.wait_leader().health()["cluster_id"]

    leader = cluster.wait_leader()
    put = leader.request("POST", "secret/data/e2e/fork", {"data": {"v": "before"}}, token=token)
    assert put.status == 200, put.body

    pod0 = cluster.node(cluster.nodes[0].env["BAO_SELF_INIT_NODE"])
    pod0.kill()  # SIGKILL, then the volume is gone
    pod0.wipe_data()
    survivors = [n for n in cluster.nodes if n is not pod0]
    wait_until("a leader among the survivors", lambda: any(n.is_active() for n in survivors), timeout=30)

    killed_at = time.monotonic()
    pod0.start()  # the rendered start.sh, initialize.json still present in its config dir
    cluster.wait_unsealed([pod0], timeout=90)
    rejoin_s = time.monotonic() - killed_at

    assert JOIN_LOG in pod0.log_text()
    ids = cluster.cluster_ids()
    assert set(ids.values()) == {original_id}, ids

    # it is a member again, the data is the old cluster's, and there is still one leader
    token = cluster.login_userpass()
    state = cluster.wait_voters_healthy(token, timeout=90)
    assert sorted(state["voters"]) == sorted(n.name for n in cluster.nodes)
    got = cluster.wait_leader().request("GET", "secret/data/e2e/fork", token=token)
    assert got.status == 200 and got.body["data"]["data"] == {"v": "before"}, got.body
    assert len(cluster.active_nodes()) == 1
    print(f"\nwiped pod-0 rejoined (unsealed) in {rejoin_s:.1f}s")
