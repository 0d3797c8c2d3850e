"""Leader failover with nothing lost: kill -9 the leader of a healthy cluster holding 1,000 KV v2
entries; a survivor becomes leader and accepts writes, every entry reads back, and the killed
node comes back on its own (static seal), rejoins as a voter of the SAME cluster
(DESIGN.md sections 3 and 3b)."""

from __future__ import annotations

import http.client
import os
import time
from concurrent.futures import ThreadPoolExecutor

from tests.e2e.harness import BaoCluster, BaoNode, wait_until

IP_BASE = "127.0.14.11"  # this file's loopback range (fake Kubernetes API on 127.0.14.10)
ENTRIES = 1000
WORKERS = 8


def _kv_write(node: BaoNode, token: str, key: str, data: dict[str, str]) -> None:
    resp = node.request("POST", f"secret/data/{key}", {"data": data}, token=token, timeout=15)
    if resp.status != 200:
        raise AssertionError(f"write {key} on {node.name}: HTTP {resp.status} {resp.body}")


def _kv_read(node: BaoNode, token: str, key: str) -> dict[str, str]:
    resp = node.request("GET", f"secret/data/{key}", token=token, timeout=15)
    if resp.status != 200:
        raise AssertionError(f"read {key} on {node.name}: HTTP {resp.status} {resp.body}")
    return resp.body["data"]["data"]


def _first_accepted_write(cluster: BaoCluster, candidates: list[BaoNode], token: str, key: str,
                          data: dict[str, str], timeout: float) -> BaoNode:
    """Try the write on every candidate until one accepts it (standbys answer 307/5xx while
    there is no leader); returns the node that took it."""
    def attempt() -> BaoNode | None:
        for node in candidates:
            try:
                resp = node.request("POST", f"secret/data/{key}", {"data": data}, token=token, timeout=3)
            except (OSError, http.client.HTTPException):
                continue
            if resp.status == 200:
                return node
        return None

    return wait_until("a survivor accepting a write", attempt, timeout, interval=0.1,
                      on_timeout=cluster.log_tails)


def test_leader_kill_loses_nothing(make_cluster):
    cluster = make_cluster(mode="script", ip_base=IP_BASE)
    token = cluster.start_healthy()
    leader = cluster.wait_leader()
    original_id = leader.health()["cluster_id"]
    assert set(cluster.cluster_ids().values()) == {original_id}

    # 1,000 KV v2 entries through the leader
    expected = {f"e2e/failover/{i:04d}": {"i": str(i), "v": os.urandom(8).hex()} for i in range(ENTRIES)}
    t0 = time.monotonic()
    with ThreadPoolExecutor(WORKERS) as pool:
        list(pool.map(lambda kv: _kv_write(leader, token, *kv), expected.items()))
    print(f"\nwrote {ENTRIES} entries in {time.monotonic() - t0:.1f}s")

    # kill -9 the leader
    killed = leader
    killed.kill()
    killed_at = time.monotonic()
    survivors = [n for n in cluster.nodes if n is not killed]
    after = {"written": "after the leader died", "v": os.urandom(8).hex()}
    taker = _first_accepted_write(cluster, survivors, token, "e2e/failover/after-kill", after, timeout=90)
    failover_s = time.monotonic() - killed_at
    print(f"failover: kill -9 of {killed.name} to first accepted write on {taker.name}: {failover_s:.1f}s")

    # a new leader, among the survivors
    new_leader = cluster.wait_leader(timeout=60)
    assert new_leader is not killed and new_leader in survivors
    assert set(cluster.cluster_ids().values()) == {original_id}

    # nothing lost: every entry reads back from the new leader, as written
    with ThreadPoolExecutor(WORKERS) as pool:
        got = dict(zip(expected, pool.map(lambda k: _kv_read(new_leader, token, k), expected)))
    wrong = [k for k in expected if got[k] != expected[k]]
    assert not wrong, f"{len(wrong)} entries differ after failover, e.g. {wrong[:3]}"
    assert _kv_read(new_leader, token, "e2e/failover/after-kill") == after

    # the killed node comes back with no human step: auto-unseal (static seal), same cluster,
    # a voter again
    killed.start()
    cluster.wait_unsealed([killed], timeout=120)
    state = cluster.wait_voters_healthy(token, count=len(cluster.nodes), timeout=120)
    assert sorted(state["voters"]) == sorted(n.name for n in cluster.nodes)
    peers = {p["node_id"]: p for p in cluster.raft_peers(token)}
    assert set(peers) == {n.name for n in cluster.nodes} and peers[killed.name]["voter"], peers
    ids = cluster.cluster_ids()
    assert len(ids) == len(cluster.nodes) and set(ids.values()) == {original_id}, ids
    assert len(cluster.active_nodes()) == 1
    # no self-init on the way back (its storage is there), whatever node it was
    assert "this node self-initialises the cluster" not in killed.log_text().rsplit("===== e2e harness: start #", 1)[-1]

    # and the 3-node cluster still takes writes
    _kv_write(cluster.wait_leader(), token, "e2e/failover/after-rejoin", {"ok": "yes"})
