"""Fault: the designated bootstrap node crashes during its first start (issue 13, scenario 4).

The node is SIGKILLed at each point of a first start, then started again through the rendered
start.sh with its data dir kept (what a pod restart does). The cluster must finish
bootstrapping by itself, or refuse with a log line naming docs/runbook-bootstrap.md; it must
never end up initialised without its auth methods: self-init returns no root token, so such a
cluster could never be administered (DESIGN.md section 3b).

What OpenBao 2.7.2 does, and why each kill point is where it is (internal/command/server.go,
``Initialize``; internal/vault/self_init.go): bao opens its storage, waits for Raft leadership,
``core.Initialize`` writes the barrier and the stored key and unseals, it waits (1 s polls)
for leadership again, writes a "self-init started" marker, runs the init requests, removes
the marker; only then does it serve HTTP. Killed after the barrier is written but before the
marker, the storage is initialised with no auth method (and sealed for good if the stored
key was not yet written); killed after the marker, bao refuses to unseal it ever again. The
old gate restarted all of these without the stanza ("storage exists"), so they stayed broken
(the unsealed one even let the peers join it). Each kill point is found from the node's own
log; the one inside the init requests is made deterministic by a stand-in: the admin password
file is a named pipe, so the request that reads it (the last one) blocks until the test has
killed the node.
"""

from __future__ import annotations

import os
import time
from typing import Optional

import pytest

from tests.e2e.harness import BaoCluster, BaoNode, wait_until

# This file's loopback range: 127.0.33.x only (files run in parallel). Each cluster takes its
# base and the two addresses after it; the fake Kubernetes API sits just below.
IP_BASES = {
    "peer-wait": "127.0.33.11",
    "storage-opened": "127.0.33.41",
    "barrier-written": "127.0.33.71",
    "unsealed-before-init-requests": "127.0.33.101",
    "during-init-requests": "127.0.33.131",
    "after-self-init": "127.0.33.161",
}
REFUSAL_IP_BASE = "127.0.33.191"

START_MARK = "===== e2e harness: start #"
RUNBOOK = "docs/runbook-bootstrap.md"
PEER_WAIT_LOG = "cannot bootstrap yet"
DECIDED_LOG = "this node self-initialises the cluster"
RECORDED_LOG = "self-initialisation finished: bootstrap recorded as complete"
SET_ASIDE_LOG = "never finished self-initialisation: its storage is set aside"
REFUSAL_LOG = "REFUSING TO START"
# bao's own log lines, in the order a first start writes them
STORAGE_OPEN_LOG = "stored unseal keys are supported, but none were found"
BARRIER_LOG = "security barrier initialized"
UNSEALED_LOG = "core: unsealed with stored key"
INIT_REQUESTS_LOG = "beginning post-unseal configuration"
USERPASS_LOG = "path=userpass/"
SERVING_LOG = "OpenBao server started!"

#: Kill points where the old gate left a broken storage behind and the new one sets it aside.
INTERRUPTED = {"storage-opened", "barrier-written", "unsealed-before-init-requests", "during-init-requests"}


def _since_last_start(node: BaoNode) -> str:
    return node.log_text().rsplit(START_MARK, 1)[-1]


def _wait_log(node: BaoNode, text: str, timeout: float = 60) -> None:
    """Poll the node's log (10 ms) for ``text`` since its last start: kill windows are ~1 s."""
    def seen() -> bool:
        if text in _since_last_start(node):
            return True
        if not node.running():
            raise AssertionError(f"{node.name} exited before logging {text!r}:\n{node.log_tail()}")
        return False

    wait_until(f"{node.name} to log {text!r}", seen, timeout, interval=0.01,
               on_timeout=node.cluster.log_tails)


def _block_admin_password(node: BaoNode) -> None:
    """Stand-in for a slow init request: the admin password file becomes a named pipe that no
    one writes, so self-init blocks in its last request (``admin-user``)."""
    path = node.path("/openbao/init/admin-password")
    path.unlink()
    os.mkfifo(path, 0o600)


def _unblock_admin_password(node: BaoNode) -> None:
    path = node.path("/openbao/init/admin-password")
    path.unlink()
    path.write_text(node.cluster.rendered.admin_password())


def _crash_at(cluster: BaoCluster, point: str) -> Optional[str]:
    """Start a first bootstrap and SIGKILL the designated node at ``point``; returns the cluster
    id when the bootstrap had finished. Asserts the kill landed where it was meant to."""
    pod0, peers = cluster.nodes[0], cluster.nodes[1:]
    if point == "peer-wait":
        pod0.start()  # alone: its gate waits for peers that do not answer
        _wait_log(pod0, PEER_WAIT_LOG)
        pod0.kill()
        assert not (pod0.data_dir / "vault.db").exists()
        return None
    if point == "during-init-requests":
        _block_admin_password(pod0)
    cluster.start()
    trigger = {"storage-opened": STORAGE_OPEN_LOG, "barrier-written": BARRIER_LOG,
               "unsealed-before-init-requests": UNSEALED_LOG, "during-init-requests": USERPASS_LOG,
               "after-self-init": DECIDED_LOG}[point]
    _wait_log(pod0, trigger)
    cluster_id = None
    if point == "after-self-init":
        for peer in peers:  # so none can join: the kill comes after self-init, before any join
            peer.kill()
        _wait_log(pod0, RECORDED_LOG)
        cluster.login_userpass(node=pod0)  # finished: the admin user exists
        cluster_id = pod0.health()["cluster_id"]
    elif point == "during-init-requests":
        time.sleep(0.3)  # blocked on the pipe for good: the moment does not matter
    pod0.kill()
    log = _since_last_start(pod0)
    assert (pod0.data_dir / "vault.db").exists(), "bao had opened its storage"
    if point in INTERRUPTED:  # killed where meant: self-init had not finished
        assert SERVING_LOG not in log
        assert (INIT_REQUESTS_LOG in log) == (point == "during-init-requests"), log[-2000:]
        assert (BARRIER_LOG in log) == (point != "storage-opened"), log[-2000:]
    if point == "during-init-requests":
        _unblock_admin_password(pod0)
    return cluster_id


def _assert_bootstrapped(cluster: BaoCluster, token: str) -> None:
    """One cluster, every node in it, and what self-init creates is there."""
    ids = cluster.cluster_ids()
    assert len(ids) == len(cluster.nodes) and None not in ids.values() and len(set(ids.values())) == 1, ids
    leader = cluster.wait_leader()
    auth = leader.request("GET", "sys/auth", token=token)
    assert auth.status == 200 and {"kubernetes/", "userpass/", "token/"} <= set(auth.body["data"]), auth.body
    role = leader.request("GET", "auth/kubernetes/role/admin", token=token)
    assert role.status == 200 and role.body["data"]["token_policies"] == ["admin"], role.body
    assert sorted(p["node_id"] for p in cluster.raft_peers(token)) == sorted(n.name for n in cluster.nodes)


def _kill_all(cluster: BaoCluster) -> None:
    """SIGKILL every node once the test has its answer: a graceful stop of three nodes would
    add seconds per test and proves nothing here."""
    for node in cluster.nodes:
        node.kill()


@pytest.mark.parametrize("point", list(IP_BASES))
def test_crash_during_bootstrap_then_restart_finishes_it(make_cluster, point: str) -> None:
    cluster = make_cluster(mode="script", ip_base=IP_BASES[point])
    pod0 = cluster.nodes[0]
    assert pod0.name == pod0.env["BAO_SELF_INIT_NODE"]
    id_before = _crash_at(cluster, point)

    restarted = time.monotonic()
    for node in cluster.nodes:  # the killed pod (data dir kept), and any peer that was stopped
        if not node.running():
            node.start()
    cluster.wait_unsealed(timeout=60)
    token = cluster.login_userpass(timeout=30)
    took = time.monotonic() - restarted
    _assert_bootstrapped(cluster, token)

    log = _since_last_start(pod0)
    set_aside = pod0.data_dir / "bootstrap-failed" / "attempt-1"
    if point in INTERRUPTED:
        assert SET_ASIDE_LOG in log and (set_aside / "vault.db").exists(), log[-2000:]
        assert DECIDED_LOG in log and "(attempt 2)" in log
    else:
        assert SET_ASIDE_LOG not in log and not set_aside.exists()
    if point == "after-self-init":
        assert DECIDED_LOG not in log, "a finished bootstrap is never redone"
        assert set(cluster.cluster_ids().values()) == {id_before}
    assert not (pod0.data_dir / "bootstrap-pending").exists()
    print(f"\ncrash {point}: bootstrapped (all unsealed, admin login) {took:.1f}s after the restart")
    _kill_all(cluster)


def test_bootstrap_that_never_finishes_is_refused_with_the_runbook(make_cluster) -> None:
    """Self-init that cannot finish (its last request blocks each time) is retried up to
    BAO_SELF_INIT_ATTEMPTS times, then the node refuses: bao is not started, the reason and the
    runbook are logged, the process stays up (no silent crash loop), no peer is initialised.
    The runbook's recovery (fix the cause, clear the journal, restart) then bootstraps."""
    cluster = make_cluster(mode="script", ip_base=REFUSAL_IP_BASE, extra_env={"BAO_SELF_INIT_ATTEMPTS": "2"})
    pod0, peers = cluster.nodes[0], cluster.nodes[1:]
    _block_admin_password(pod0)
    cluster.start()
    for attempt in (1, 2):
        _wait_log(pod0, f"(attempt {attempt})")
        _wait_log(pod0, USERPASS_LOG)
        pod0.kill()
        pod0.start()

    _wait_log(pod0, REFUSAL_LOG, timeout=30)
    log = _since_last_start(pod0)
    assert RUNBOOK in log.split(REFUSAL_LOG, 1)[1].splitlines()[0], log
    time.sleep(1)
    assert pod0.running(), "a refusing node waits for an operator; it does not crash-loop"
    assert "OpenBao server configuration" not in _since_last_start(pod0), "bao must not be started"
    assert pod0.health() is None, "a refusing node serves nothing"
    assert all(p.health() and p.health()["initialized"] is False for p in peers)
    assert {p.name for p in (pod0.data_dir / "bootstrap-failed").iterdir()} == {"attempt-1", "attempt-2"}

    # docs/runbook-bootstrap.md, "Refused": fix the cause, clear the journal, restart the pod
    pod0.kill()
    _unblock_admin_password(pod0)
    (pod0.data_dir / "bootstrap-pending").unlink()
    pod0.start()
    cluster.wait_unsealed(timeout=60)
    _assert_bootstrapped(cluster, cluster.login_userpass(timeout=30))
    _kill_all(cluster)
