"""tools.rollout against real OpenBao: standbys first, leader last after step-down, writes
accepted throughout and none lost (docs/runbook-upgrade.md)."""

from __future__ import annotations

import threading
import time

from tests.e2e.harness import BaoCluster, BaoNode
from tools.rollout import Member, rollout

IP_BASE = "127.0.4.11"


class HarnessFleet:
    """tools.rollout's Fleet over harness nodes: a restart is a process stop and start."""

    def __init__(self, cluster: BaoCluster, token: str) -> None:
        self.cluster = cluster
        self.token = token

    def members(self) -> list[Member]:
        return [Member(n.name, n.is_active()) for n in self.cluster.nodes]

    def restart(self, name: str) -> None:
        node = self.cluster.node(name)
        node.stop()
        node.start()
        self.cluster.wait_unsealed([node], timeout=90)

    def step_down(self) -> None:
        leader = self.cluster.wait_leader()
        resp = leader.request("PUT", "sys/step-down", token=self.token)
        assert resp.status == 204, resp.body

    def healthy(self) -> bool:
        try:
            state = self.cluster.autopilot_state(self.token)
        except Exception:  # no leader for a moment (step-down): not healthy yet
            return False
        voters = [s for s in state.get("servers", {}).values() if s.get("healthy") and s.get("status") in ("leader", "voter")]
        return bool(state.get("healthy")) and len(voters) == len(self.cluster.nodes)


class Writer(threading.Thread):
    """Writes numbered keys to whichever node is active; remembers what was accepted."""

    def __init__(self, cluster: BaoCluster, token: str) -> None:
        super().__init__(daemon=True)
        self.cluster, self.token = cluster, token
        self.accepted: list[int] = []
        self.stop_event = threading.Event()

    def _active(self) -> BaoNode | None:
        for node in self.cluster.running():
            try:
                if node.is_active():
                    return node
            except Exception:
                continue
        return None

    def run(self) -> None:
        i = 0
        while not self.stop_event.is_set():
            node = self._active()
            if node is not None:
                try:
                    resp = node.request("POST", f"secret/data/rollout/{i}", {"data": {"i": str(i)}},
                                        token=self.token, timeout=3)
                    if resp.status == 200:
                        self.accepted.append(i)
                        i += 1
                except OSError:
                    pass
            time.sleep(0.02)


def test_rollout_keeps_serving_and_loses_nothing(make_cluster):
    cluster = make_cluster(ip_base=IP_BASE)
    token = cluster.start_healthy()
    old_leader = cluster.wait_leader().name
    starts_before = {n.name: n.starts for n in cluster.nodes}

    writer = Writer(cluster, token)
    writer.start()
    phases: list[tuple[str, int]] = []
    order = rollout(HarnessFleet(cluster, token), log=lambda msg: phases.append((msg, len(writer.accepted))),
                    timeout=180, interval=0.5)
    time.sleep(1)
    writer.stop_event.set()
    writer.join(timeout=10)

    # order: every standby before the leader, the leader last
    assert order[-1] == old_leader and sorted(order) == sorted(n.name for n in cluster.nodes)
    assert all(n.starts == starts_before[n.name] + 1 for n in cluster.nodes), "each node restarted exactly once"
    # writes were accepted in every phase: the cluster never stopped serving for a whole step
    counts = [c for _, c in phases] + [len(writer.accepted)]
    assert all(b > a for a, b in zip(counts, counts[1:])), phases
    # nothing accepted was lost
    leader = cluster.wait_leader()
    for i in writer.accepted:
        got = leader.request("GET", f"secret/data/rollout/{i}", token=token)
        assert got.status == 200 and got.body["data"]["data"] == {"i": str(i)}, (i, got.body)
    assert len(set(cluster.cluster_ids().values())) == 1
    print(f"\nrollout {order}: {len(writer.accepted)} writes accepted, phases {phases}")
