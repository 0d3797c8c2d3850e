"""Cold restart of the whole cluster: every node stopped (SIGTERM), then all started again through
the rendered start.sh. With no human step (the test makes no init or unseal call) every node
unseals from the static seal, one leader is elected, all voters are healthy, the cluster id is
unchanged and every entry is still there (DESIGN.md sections 3 and 3b)."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.harness import BaoNode

IP_BASE = "127.0.13.11"  # this file's loopback range (fake Kubernetes API on 127.0.13.10)
ENTRIES = 100
START_MARK = "===== e2e harness: start #"
BOOTSTRAP_LOG = "this node self-initialises the cluster"


def _since_last_start(node: BaoNode) -> str:
    return node.log_text().rsplit(START_MARK, 1)[-1]


def test_cold_restart_needs_no_human(make_cluster):
    cluster = make_cluster(mode="script", ip_base=IP_BASE)
    token = cluster.start_healthy()
    leader = cluster.wait_leader()
    original_id = leader.health()["cluster_id"]

    expected = {f"e2e/cold/{i:03d}": {"i": str(i), "v": os.urandom(8).hex()} for i in range(ENTRIES)}

    def write(item):
        key, data = item
        resp = leader.request("POST", f"secret/data/{key}", {"data": data}, token=token, timeout=15)
        assert resp.status == 200, (key, resp.status, resp.body)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, expected.items()))

    # full stop: SIGTERM every node; each must exit by itself (0), not need the SIGKILL fallback
    stopping = time.monotonic()
    codes = {n.name: n.stop(timeout=30) for n in cluster.nodes}
    stopped = time.monotonic()
    assert codes == {n.name: 0 for n in cluster.nodes}, codes
    assert not cluster.running()

    # start them all again, as Kubernetes would after a full outage
    cluster.start()
    cluster.wait_unsealed(timeout=120)
    new_leader = cluster.wait_leader(timeout=60)
    token = cluster.login_userpass(timeout=60)  # the old token would do too; a fresh login proves auth works
    unsealed = time.monotonic()
    state = cluster.wait_voters_healthy(token, count=len(cluster.nodes), timeout=120)
    assert sorted(state["voters"]) == sorted(n.name for n in cluster.nodes)
    assert len(cluster.active_nodes()) == 1
    print(f"\ncold restart: stop {stopped - stopping:.1f}s, start to unsealed+leader+login "
          f"{unsealed - stopped:.1f}s, to {len(cluster.nodes)} healthy voters {time.monotonic() - stopped:.1f}s")

    ids = cluster.cluster_ids()
    assert len(ids) == len(cluster.nodes) and set(ids.values()) == {original_id}, ids

    # no node took the self-init path on the way back: the designated one saw its storage
    designated = cluster.node(cluster.nodes[0].env["BAO_SELF_INIT_NODE"])
    for node in cluster.nodes:
        assert BOOTSTRAP_LOG not in _since_last_start(node), node.name
    assert "storage exists in" in _since_last_start(designated)

    def read(key):
        resp = new_leader.request("GET", f"secret/data/{key}", token=token, timeout=15)
        assert resp.status == 200, (key, resp.status, resp.body)
        return resp.body["data"]["data"]

    with ThreadPoolExecutor(8) as pool:
        got = dict(zip(expected, pool.map(read, expected)))
    assert got == expected

    put = new_leader.request("POST", "secret/data/e2e/cold/after", {"data": {"ok": "yes"}}, token=token)
    assert put.status == 200, put.body
