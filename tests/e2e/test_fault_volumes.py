"""Fault: a full volume under continuous client traffic (issue 13, scenarios 2 and 3).

Each node gets size-limited volumes (the harness's ``volume_sizes`` tmpfs, like a PVC of that
size); a ballast file fills one until the kernel answers ENOSPC. Measured on real OpenBao
2.7.2, and what these tests hold it to (docs/runbook-full-volumes.md):

- Audit volume full, one audit device (the old prod default): every audited request (reads,
  writes, logins) answers 500 ``internal error`` while /v1/sys/health stays 200 on the same
  active node, so probes pass and nothing fails over: a total outage. Refused writes are
  not applied. Freeing space ends it within a second, no restart.
- Audit volume full with the shipped second device (stdout): the cluster keeps serving;
  the file device fails silently (only a log line, no metric), so only the volume alert
  sees it. Freeing space, the file device writes again by itself.
- Data volume full: the node either panics (``failed to store data`` on vault.db) or keeps
  running but refuses Raft appends (``failed to append to logs`` on raft.db): which one
  depends on where bbolt has slack. A full leader loses leadership either way and a peer
  takes over. After space is freed (and the kubelet's restart, if it exited) the node
  catches up; nothing acknowledged is lost.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterator

import pytest

from tests.e2e import volumes
from tests.e2e.harness import BaoCluster, BaoNode, Rendered, render, wait_until
from tests.e2e.traffic import Writer, lost_writes

IP_BASE = "127.0.32.11"  # this file's loopback range (fake Kubernetes API on 127.0.32.10)
AUDIT_DIR = "/openbao/audit"
DATA_DIR = "/openbao/data"
AUDIT_SIZE = "4m"   # small: the ballast fills it in milliseconds
DATA_SIZE = "64m"   # room for a fresh Raft store (~200 KiB) plus the test's writes
REFUSED = {"errors": ["internal error"]}
AUDIT_BLOCKED_LOG = "no audit backend succeeded in logging the request"
FSM_PANIC = "panic: failed to store data"
NO_SPACE = "no space left on device"


@pytest.fixture(scope="module")
def single_device_render(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The stack with the file audit device only (the old prod default) and monitoring on
    (unauthenticated metrics, as Prometheus scrapes them)."""
    stack = os.environ.get("E2E_STACK", "dev")
    return render(stack, tmp_path_factory.mktemp("render-one-audit-device"),
                  overrides={"audit.file": True, "audit.stdout": False, "monitoring.enabled": True})


@pytest.fixture
def cluster_from(request: pytest.FixtureRequest) -> Iterator[Callable[..., BaoCluster]]:
    """Like conftest's make_cluster, for a render other than the session's: closes every
    cluster, printing node logs when the test failed."""
    made: list[BaoCluster] = []

    def factory(rendered: Rendered, **kwargs) -> BaoCluster:
        kwargs.setdefault("kube", os.environ.get("E2E_KUBE", "auto"))
        made.append(BaoCluster(rendered, **kwargs))
        return made[-1]

    yield factory
    failed = any(getattr(getattr(request.node, f"e2e_rep_{w}", None), "failed", False) for w in ("setup", "call"))
    for cluster in made:
        if failed:
            print(f"\n===== e2e node logs ({cluster.workdir}) =====\n{cluster.log_tails(60)}")
        cluster.close()


def _audit_devices(rendered: Rendered) -> dict[str, str]:
    """Declared audit device name -> file_path."""
    return {name: dev["options"]["file_path"] for block in rendered.server.get("audit", [])
            for devices in block.values() for name, dev in devices.items()}


def _ack_gap(writer: Writer, start: float, end: float) -> float:
    """Longest time without an acknowledged write between ``start`` and ``end``."""
    times = [start] + [r.at for r in list(writer.accepted) if start <= r.at <= end] + [end]
    return max(b - a for a, b in zip(times, times[1:]))


def _writing(cluster: BaoCluster, prefix: str) -> tuple[str, BaoNode, Writer]:
    """Healthy voters and a client writing under ``prefix`` (20 writes acknowledged), before a
    volume fills: every scenario measures what the client sees. Returns (token, leader, writer)."""
    token = cluster.start_healthy()
    leader = cluster.wait_leader()
    writer = Writer(cluster, token, prefix=prefix)
    writer.start()
    writer.wait_for_more(20)
    return token, leader, writer


def _since(node: BaoNode, marker: int) -> str:
    """The node's log written after byte offset ``marker``."""
    return node.log_text()[marker:]


# ------------------------------------------------------------------------------------------
# Scenario 2: the audit volume is full


def test_full_audit_volume_with_one_device_is_a_total_outage(cluster_from, single_device_render):
    assert list(_audit_devices(single_device_render).values()) == [f"{AUDIT_DIR}/audit.log"]
    cluster = cluster_from(single_device_render, mode="script", ip_base=IP_BASE,
                           volume_sizes={AUDIT_DIR: AUDIT_SIZE})
    token, leader, writer = _writing(cluster, "audit-one")

    audit_dir = leader.path(AUDIT_DIR)
    marker = len(leader.log_text())
    volumes.fill(audit_dir)
    full_at = time.monotonic()
    probes_ok = 0

    def refused() -> bool:
        nonlocal probes_ok
        resp = leader.request("POST", "secret/data/e2e/audit-probe", {"data": {"v": "x"}}, token=token)
        if resp.status == 200:  # the audit file's last page still had room
            probes_ok += 1
            return False
        assert (resp.status, resp.body) == (500, REFUSED)
        return True

    wait_until("the first request refused for want of audit", refused, timeout=10, interval=0.05)
    outage_s = time.monotonic() - full_at
    acked_at_outage = writer.count()
    time.sleep(4)
    # nothing is served: no write acknowledged, reads and logins refused the same way
    assert writer.count() <= acked_at_outage + 1, "writes were acknowledged with no audit device able to log"
    read = leader.request("GET", "secret/data/audit-one/0", token=token)
    assert (read.status, read.body) == (500, REFUSED)
    login = leader.request("POST", "auth/userpass/login/admin", {"password": single_device_render.admin_password()})
    assert (login.status, login.body) == (500, REFUSED)
    # ... yet health says all is well: probes pass, the same node stays active, no failover
    health = leader.request("GET", "/v1/sys/health")
    assert health.status == 200 and health.body["standby"] is False
    assert cluster.active_nodes() == [leader] and leader.starts == 1
    assert AUDIT_BLOCKED_LOG in _since(leader, marker)
    # the unauthenticated scrape still answers and counts the refusals (OpenBaoAuditBlocked)
    failures = volumes.metric(leader, "vault_audit_log_request_failure")
    assert failures is not None and failures > 0, failures

    volumes.free(audit_dir)
    freed_at = time.monotonic()
    writer.wait_for_more(writer.count(), timeout=30)
    recover_s = writer.first_accepted_after(freed_at).at - freed_at
    writer.wait_for_more(writer.count() + 20)
    writer.finish()
    assert cluster.active_nodes() == [leader] and leader.starts == 1  # no restart, no failover

    # A refused write is not applied once the device has failed, but the first 500 can be a
    # write that was: its request entry still fitted, its response entry did not. So at
    # most one probe beyond the acknowledged ones exists (clients must treat 500 as unknown).
    meta = leader.request("GET", "secret/metadata/e2e/audit-probe", token=token)
    versions = 0 if meta.status == 404 else meta.body["data"]["current_version"]
    assert probes_ok <= versions <= probes_ok + 1, (probes_ok, versions, meta.body)
    assert lost_writes(leader, token, writer) == []
    print(f"\none audit device: full to first refusal {outage_s:.2f}s, freed to first acked write "
          f"{recover_s:.2f}s; {writer.count()} writes acked of {writer.attempts} attempts, 0 lost; "
          f"probe writes acked {probes_ok}, applied {versions}")


def test_full_audit_volume_with_the_shipped_stdout_device_keeps_serving(make_cluster, rendered):
    devices = _audit_devices(rendered)
    assert sorted(devices.values()) == sorted([f"{AUDIT_DIR}/audit.log", "stdout"]), (
        f"the shipped default must declare a second audit device on another failure domain: {devices}")
    cluster = make_cluster(mode="script", ip_base=IP_BASE, volume_sizes={AUDIT_DIR: AUDIT_SIZE})
    token, leader, writer = _writing(cluster, "audit-two")

    audit_log = leader.path(AUDIT_DIR) / "audit.log"
    marker = len(leader.log_text())
    volumes.fill(audit_log.parent)
    full_at = time.monotonic()
    wait_until("the file device failing", lambda: "backend failed to log request: backend=file-" in _since(leader, marker),
               timeout=10)
    size_full = audit_log.stat().st_size
    acked_full = writer.count()
    time.sleep(5)
    held_at = time.monotonic()
    gap = _ack_gap(writer, full_at, held_at)
    assert writer.count() >= acked_full + 20 and gap < 2.0, (writer.count(), acked_full, gap)
    assert audit_log.stat().st_size == size_full  # the file device wrote nothing
    # every acknowledged write is still audited: by the stdout device, into the container log
    last = writer.accepted[-1].key
    assert f'"path":"secret/data/audit-two/{last}"' in _since(leader, marker)
    assert AUDIT_BLOCKED_LOG not in _since(leader, marker)
    # and no metric tells: the failure counter only counts requests no device could log
    assert volumes.metric(leader, "vault_audit_log_request_failure", token=token) == 0

    volumes.free(audit_log.parent)
    freed_at = time.monotonic()
    wait_until("the file device writing again", lambda: audit_log.stat().st_size > size_full, timeout=30, interval=0.05)
    file_back_s = time.monotonic() - freed_at
    writer.wait_for_more(writer.count() + 20)
    writer.finish()
    assert cluster.active_nodes() == [leader] and leader.starts == 1
    assert lost_writes(leader, token, writer) == []
    print(f"\nfile + stdout devices: longest gap between acked writes while full {gap:.2f}s; file device "
          f"writing {file_back_s:.2f}s after space freed; {writer.count()} acked of {writer.attempts}, 0 lost")


# ------------------------------------------------------------------------------------------
# Scenario 3: the data volume is full


def _data_full_then_freed(cluster: BaoCluster, token: str, writer: Writer, target: BaoNode) -> dict[str, float | str]:
    """Fill ``target``'s data volume under traffic, check the cluster keeps acknowledging
    writes on another node, free the space, restart the node if it died (the kubelet does),
    and wait until it is a caught-up healthy voter. Returns the measured figures."""
    marker = len(target.log_text())
    volumes.fill(target.data_dir)
    full_at = time.monotonic()
    wait_until(f"{target.name} hitting ENOSPC", lambda: NO_SPACE in _since(target, marker), timeout=20,
               on_timeout=cluster.log_tails)
    # the cluster serves on: a write is acknowledged by another node after the volume filled
    first = wait_until("a write acknowledged by a healthy node",
                       lambda: next((r for r in list(writer.accepted) if r.at > full_at and r.node != target.name), None),
                       timeout=30, on_timeout=cluster.log_tails)
    served_s = first.at - full_at
    acked = writer.count()
    writer.wait_for_more(acked + 30, timeout=30)
    assert not target.is_active(), f"{target.name} is still the leader on a full data volume"
    late = [r for r in list(writer.accepted) if r.at > first.at and r.node == target.name]
    assert not late, f"{target.name} acknowledged writes on a full volume: {late[:3]}"

    if target.running():  # a read-enabled standby answers from its own, now frozen, state
        newest = writer.accepted[-1]
        got = target.request("GET", f"secret/data/{writer.prefix}/{newest.key}", token=token)
        assert got.status == 404, f"{target.name} on a full volume: HTTP {got.status} {got.body}"
    log = _since(target, marker)
    if target.running():
        outcome = "kept running, Raft appends refused"
        assert "failed to append to logs" in log, log[-2000:]
    else:
        outcome = f"exited rc={target.proc.returncode}"
        assert target.proc.returncode != 0 and FSM_PANIC in log, log[-2000:]

    volumes.free(target.data_dir)
    freed_at = time.monotonic()
    if not target.running():
        target.start()  # what the kubelet does to the crashed container
    cluster.wait_unsealed([target], timeout=60)
    writer.wait_for_more(writer.count() + 20)
    writer.finish()

    def caught_up() -> bool:
        servers = cluster.autopilot_state(token)["servers"]
        leader_index = max(s["last_index"] for s in servers.values())
        return servers[target.name]["healthy"] and servers[target.name]["last_index"] >= leader_index

    wait_until(f"{target.name} caught up", caught_up, timeout=60, interval=0.5, on_timeout=cluster.log_tails)
    caught_up_s = time.monotonic() - freed_at
    cluster.wait_voters_healthy(token, count=len(cluster.nodes), timeout=60)
    return {"outcome": outcome, "served_s": served_s, "caught_up_s": caught_up_s}


def test_full_data_volume_on_a_follower(make_cluster):
    cluster = make_cluster(mode="script", ip_base=IP_BASE, volume_sizes={DATA_DIR: DATA_SIZE})
    token, leader, writer = _writing(cluster, "data-follower")
    follower = next(n for n in cluster.nodes if n is not leader)

    got = _data_full_then_freed(cluster, token, writer, follower)
    assert cluster.wait_leader() is leader  # a full follower never disturbs the leader
    assert lost_writes(leader, token, writer) == []
    assert lost_writes(follower, token, writer) == []  # read-enabled standby: its own copy
    print(f"\nfull follower data volume: {follower.name} {got['outcome']}; writes went on (first ack "
          f"{got['served_s']:.2f}s after full); caught up {got['caught_up_s']:.1f}s after space freed; "
          f"{writer.count()} acked of {writer.attempts}, 0 lost")


def test_full_data_volume_on_the_leader(make_cluster):
    cluster = make_cluster(mode="script", ip_base=IP_BASE, volume_sizes={DATA_DIR: DATA_SIZE})
    token, leader, writer = _writing(cluster, "data-leader")

    got = _data_full_then_freed(cluster, token, writer, leader)
    new_leader = cluster.wait_leader()
    assert new_leader is not leader
    assert lost_writes(new_leader, token, writer) == []
    assert lost_writes(leader, token, writer) == []
    print(f"\nfull leader data volume: {leader.name} {got['outcome']}; {new_leader.name} acknowledged the "
          f"first write {got['served_s']:.2f}s after full; old leader caught up {got['caught_up_s']:.1f}s "
          f"after space freed; {writer.count()} acked of {writer.attempts}, 0 lost")
