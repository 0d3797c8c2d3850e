"""Fault (issue 13, scenario 5): lost quorum. Two of three nodes lose their volumes for good
while a client writes continuously (tests/e2e/traffic.Writer). docs/runbook-lost-quorum.md,
step by step (each step below is tagged with the runbook step it mirrors):

- ``test_survivor_recovers_with_peers_json``: the survivor was a healthy voter, its Raft index
  is at least the newest verified snapshot's, so the runbook prescribes ``raft/peers.json``.
  The survivor becomes the leader of a one-node cluster, the two replacement pods (empty
  volumes, the rendered start.sh) join it, and every acknowledged write is still readable.
- ``test_stale_survivor_restores_the_newest_snapshot``: the survivor was down while the other
  two kept committing and a backup ran, so its index is older than the snapshot's; the
  runbook prescribes a fresh cluster + the snapshot. Exactly the writes acknowledged after
  the snapshot are lost (no procedure can bring back what only the lost volumes held);
  every write acknowledged before it, including those the survivor never had, is back.
  The test also runs peers.json on that stale survivor first (not a runbook step) to show
  what procedure A would have lost there.

Why the outcome differs: Raft commits on a majority (2 of 3). A write acknowledged by the
leader and one follower is on those two only until the third catches up; losing both loses
it unless the survivor already had it. A healthy follower trails by milliseconds at most.
"""

from __future__ import annotations

import json
import tarfile
import time
from pathlib import Path
from typing import Any, Callable

from tests.e2e.harness import BaoCluster, BaoNode, bao_cli, wait_until
from tests.e2e.test_backup_restore import (BackupJob, _fake_kube, _settings, _verify_snapshot, restart_after_restore,
                                           restore_snapshot)
from tests.e2e.traffic import Writer, lost_writes

IP_BASE = "127.0.34.11"  # this file's loopback range: files run in parallel
STALE_IP_BASE = "127.0.34.41"  # the second test's cluster
NO_QUORUM_OBSERVED_S = 3.0  # several election timeouts (performance_multiplier 1)
RECOVERY_LOG = "raft recovery deleted peers.json"
SELF_INIT_LOG = "this node self-initialises the cluster"
JOIN_LOG = "joining the existing cluster, not bootstrapping"


def _snapshot_index(path: Path) -> int:
    """The Raft index a snapshot was taken at (meta.json "Index"; remote.sh's manifest raft_index)."""
    with tarfile.open(path, "r:gz") as tar:
        member = tar.extractfile("meta.json")
        assert member is not None
        return int(json.loads(member.read())["Index"])


def _status(node: BaoNode) -> dict[str, Any]:
    """`kubectl exec <pod> -- bao status -format=json`: answers without a leader too. Its
    raft_committed_index is the last index in the node's own log (RaftBackend.CommittedIndex
    returns raft.LastIndex()): what peers.json recovery keeps."""
    run = bao_cli(node, "status", "-format=json", timeout=30)
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def _healthy_cluster(make_cluster: Callable[..., BaoCluster], ip_base: str) -> tuple[BaoCluster, str, str]:
    """Three healthy voters, kubernetes auth on the fake API (backup.sh logs in through it).
    Returns (cluster, admin token, cluster_id): the id a recovery must bring back."""
    cluster = make_cluster(ip_base=ip_base)
    _fake_kube(cluster)
    token = cluster.start_healthy()
    return cluster, token, cluster.wait_leader().health()["cluster_id"]


def _pick_survivor(cluster: BaoCluster) -> BaoNode:
    """A standby that is not the designated bootstrap pod: the leader dies, and the lost
    bootstrap pod must join on its return, not fork (its start.sh gate is exercised)."""
    leader = cluster.wait_leader()
    bootstrap = cluster.nodes[0].env["BAO_SELF_INIT_NODE"]
    return next(n for n in cluster.nodes if n is not leader and n.name != bootstrap)


def _lose_volumes(nodes: list[BaoNode]) -> float:
    """kill -9 both at once, then their volumes are gone for good. Returns the moment (monotonic)."""
    for node in nodes:
        node.kill()
    lost_at = time.monotonic()
    for node in nodes:
        node.wipe_data()
    return lost_at


def _assert_no_quorum(cluster: BaoCluster, survivor: BaoNode, writer: Writer, token: str, lost_at: float) -> None:
    """Runbook step 1: no node is active for several election timeouts, the survivor refuses a
    write, and the client had no write acknowledged since the loss."""
    deadline = lost_at + NO_QUORUM_OBSERVED_S
    while time.monotonic() < deadline:
        assert cluster.active_nodes() == [], "a node became active without quorum"
        time.sleep(0.2)
    refused = survivor.request("POST", "secret/data/e2e/quorum/probe", {"data": {"v": "x"}}, token=token)
    assert refused.status != 200, refused.body
    status = _status(survivor)
    assert status["sealed"] is False and status["ha_enabled"] is True, status
    assert writer.first_accepted_after(lost_at) is None
    assert survivor.health()["standby"] is True
    # what a recreated pod's start.sh asks (sys/init): initialised, so it joins, never bootstraps
    assert survivor.request("GET", "sys/init").body == {"initialized": True}


def _write_peers_json(node: BaoNode) -> tuple[str, str]:
    """Runbook steps 3-4: ``<data>/raft/peers.json`` naming only ``node`` (its BAO_RAFT_NODE_ID
    and BAO_CLUSTER_ADDR without the scheme) as a voter. Returns (id, address)."""
    node_id = node.env["BAO_RAFT_NODE_ID"]
    address = node.env["BAO_CLUSTER_ADDR"].split("://", 1)[1]
    peers = [{"id": node_id, "address": address, "non_voter": False}]
    (node.data_dir / "raft" / "peers.json").write_text(json.dumps(peers, indent=2))
    return node_id, address


def test_survivor_recovers_with_peers_json(make_cluster, tmp_path):
    """Procedure A: a healthy survivor has every acknowledged write, so peers.json loses none."""
    settings = _settings()
    cluster, token, original_id = _healthy_cluster(make_cluster, IP_BASE)
    healthy_peers = {p["node_id"]: p["address"] for p in cluster.raft_peers(token)}

    writer = Writer(cluster, token, prefix="e2e/quorum/live")
    writer.start()
    try:
        writer.wait_for_more(20)
        # the newest verified snapshot, as the CronJob takes it (real backup.sh)
        job = BackupJob(tmp_path / "backup-job", settings)
        run = job.run(cluster)
        assert run.returncode == 0, run.stderr
        snapshot = job.snapshots()[-1]
        _verify_snapshot(snapshot)
        snap_index = _snapshot_index(snapshot)
        writer.wait_for_more(writer.count() + 20)  # traffic goes on after the backup

        survivor = _pick_survivor(cluster)
        lost = [n for n in cluster.nodes if n is not survivor]
        acked_before_loss = writer.count()
        lost_at = _lose_volumes(lost)

        # 1. quorum is lost: nothing is active, the survivor refuses writes
        _assert_no_quorum(cluster, survivor, writer, token, lost_at)

        # 2. decide: the survivor's log reaches at least the newest verified snapshot -> peers.json
        survivor_index = int(_status(survivor)["raft_committed_index"])
        assert survivor_index >= snap_index, (survivor_index, snap_index)

        # 3. + 4. its Raft node id and cluster address (pod env; there is no node-id file), the
        # ones the healthy cluster listed; peers.json with only the survivor in <data>/raft/
        assert not (survivor.data_dir / "node-id").exists()
        node_id, address = _write_peers_json(survivor)
        assert healthy_peers[node_id] == address, (healthy_peers, node_id, address)

        # 5. restart the survivor (kubectl delete pod): the rendered start.sh, same volume
        restart_at = time.monotonic()
        log_mark = len(survivor.log_text())
        survivor.stop()
        survivor.start()
        cluster.wait_unsealed([survivor], timeout=60)
        since = survivor.log_text()[log_mark:]
        assert RECOVERY_LOG in since, since[-2000:]
        assert SELF_INIT_LOG not in since
        assert not (survivor.data_dir / "raft" / "peers.json").exists()

        # 6. it leads a one-node cluster and accepts writes again (the client's next write)
        wait_until("the survivor active", survivor.is_active, timeout=60, on_timeout=cluster.log_tails)
        writer.wait_for_more(acked_before_loss, timeout=60)
        first = writer.first_accepted_after(lost_at)
        assert first is not None and first.node == survivor.name
        first_write_s, restart_write_s = first.at - lost_at, first.at - restart_at
        alone = cluster.raft_peers(token)
        assert [(p["node_id"], p["voter"]) for p in alone] == [(node_id, True)], alone

        # 7. the lost pods come back with empty volumes (rendered start.sh) and join
        for node in lost:
            node.start()
        cluster.wait_unsealed(lost, timeout=90)
        bootstrap = cluster.node(survivor.env["BAO_SELF_INIT_NODE"])
        assert bootstrap in lost and JOIN_LOG in bootstrap.log_text()
        assert SELF_INIT_LOG not in bootstrap.log_text().split("e2e harness: start #2", 1)[1]

        # 8. three healthy voters again: the same node ids, one cluster, the survivor leads
        state = cluster.wait_voters_healthy(token, count=3, timeout=90)
        voters_s = time.monotonic() - lost_at
        assert sorted(state["voters"]) == sorted(n.name for n in cluster.nodes), state
        assert set(cluster.cluster_ids().values()) == {original_id}
        assert cluster.wait_leader() is survivor
        writer.wait_for_more(writer.count())
    finally:
        writer.finish()

    # 9. every acknowledged write is readable, on every node
    assert lost_writes(survivor, token, writer) == []
    last = writer.accepted[-1]
    for node in cluster.nodes:
        got = node.request("GET", f"secret/data/{writer.prefix}/{last.key}", token=token)
        assert got.status == 200, (node.name, got.status, got.body)
    print(f"\nlost quorum, peers.json on {survivor.name} (index {survivor_index} >= snapshot {snap_index}): "
          f"first accepted write {first_write_s:.1f}s after the loss ({restart_write_s:.1f}s after the "
          f"survivor's restart), 3 healthy voters after {voters_s:.1f}s; "
          f"{writer.count()} writes acknowledged ({acked_before_loss} before the loss), 0 lost")


def test_stale_survivor_restores_the_newest_snapshot(make_cluster, tmp_path):
    """Procedure B: a survivor older than the newest snapshot would lose more than the snapshot."""
    settings = _settings()
    cluster, token, original_id = _healthy_cluster(make_cluster, STALE_IP_BASE)

    writer = Writer(cluster, token, prefix="e2e/quorum/stale")
    after: Writer | None = None
    writer.start()
    try:
        writer.wait_for_more(20)
        # the future survivor is down for a while (its volume intact); two voters keep committing
        stale = _pick_survivor(cluster)
        stale.stop()
        down_at = time.monotonic()
        writer.wait_for_more(writer.count() + 20)
        job = BackupJob(tmp_path / "backup-job", settings)
        snap_started = time.monotonic()
        run = job.run(cluster)
        snap_done = time.monotonic()
        assert run.returncode == 0, run.stderr
        snapshot = job.snapshots()[-1]
        _verify_snapshot(snapshot)
        snap_index = _snapshot_index(snapshot)
        writer.wait_for_more(writer.count() + 20)  # acknowledged after the newest snapshot

        lost = [n for n in cluster.nodes if n is not stale]
        lost_at = _lose_volumes(lost)
        stale.start()  # it comes back, alone
        cluster.wait_unsealed([stale], timeout=60)

        # 1. quorum is lost; the client stops here (a second one writes after the recovery)
        _assert_no_quorum(cluster, stale, writer, token, lost_at)
        writer.finish()

        # 2. decide: the survivor's log ends before the newest verified snapshot -> snapshot
        stale_index = int(_status(stale)["raft_committed_index"])
        assert stale_index < snap_index, (stale_index, snap_index)

        # (not a runbook step) what procedure A would have kept: peers.json on the stale survivor
        _write_peers_json(stale)
        stale.stop()
        stale.start()
        wait_until("the stale survivor active", stale.is_active, timeout=60, on_timeout=cluster.log_tails)
        lost_with_a = set(lost_writes(stale, token, writer))

        # 3. a fresh cluster: every pod, the survivor too, with an empty volume; self-init
        fresh_at = time.monotonic()
        stale.stop()
        stale.wipe_data()
        cluster.start()
        after = Writer(cluster, token, prefix="e2e/quorum/after")  # the client, with its old token
        after.start()
        cluster.wait_unsealed(timeout=120)
        fresh_token = cluster.login_userpass()
        cluster.wait_voters_healthy(fresh_token, count=3, timeout=90)
        fresh_id = cluster.wait_leader().health()["cluster_id"]
        assert fresh_id != original_id
        assert after.count() == 0  # a fresh cluster does not know the client's token

        # 4. docs/runbook-restore.md with the newest verified snapshot; it is served once a token
        # of the snapshot's cluster (the client's old one) reads a key it holds
        active = cluster.wait_leader()
        probe = f"secret/data/{writer.prefix}/0"
        restore_snapshot(cluster, active, snapshot, fresh_token, settings.active_dns_name,
                         served=lambda: active.request("GET", probe, token=token).status == 200)
        restart_after_restore(cluster, active)
        restored_token = cluster.login_userpass()
        cluster.wait_voters_healthy(restored_token, count=3, timeout=90)
        voters_s = time.monotonic() - lost_at
        assert set(cluster.cluster_ids().values()) == {original_id}
        after.wait_for_more(after.count())
        first_write_s, fresh_write_s = after.accepted[0].at - lost_at, after.accepted[0].at - fresh_at
    finally:
        writer.finish()
        if after is not None:
            after.finish()

    # 5. what came back: every write acknowledged before the backup ran, including those the
    # survivor never had (A would have lost them); what is gone: the writes acknowledged after
    # it (they lived on the lost volumes only). Writes after the recovery are all there.
    gone = set(lost_writes(cluster.wait_leader(), restored_token, writer))
    before_snap = {r.key for r in writer.accepted if r.at < snap_started}
    missed_by_stale = {r.key for r in writer.accepted if down_at <= r.at < snap_started}
    after_snap = {r.key for r in writer.accepted if r.at >= snap_done}
    assert missed_by_stale and after_snap
    assert missed_by_stale <= lost_with_a, sorted(missed_by_stale - lost_with_a)
    assert not gone & before_snap, sorted(gone & before_snap)
    assert after_snap <= gone, sorted(after_snap - gone)
    assert lost_writes(cluster.wait_leader(), restored_token, after) == []
    print(f"\nlost quorum, stale survivor {stale.name} (index {stale_index} < snapshot {snap_index}): "
          f"peers.json on it would have lost {len(lost_with_a)} of {writer.count()} acknowledged writes; "
          f"the snapshot in a fresh cluster lost {len(gone)} (all acknowledged after the backup ran; "
          f"{len(missed_by_stale)} the survivor never had are back); first accepted write "
          f"{first_write_s:.1f}s after the loss ({fresh_write_s:.1f}s after the fresh cluster was started), "
          f"3 healthy voters after {voters_s:.1f}s; {after.count()} written after, 0 lost")
