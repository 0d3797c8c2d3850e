"""tools.rollout: the restart order and its safety stops (the e2e suite runs it for real)."""

from __future__ import annotations

import pytest

from tests.support.snapshots import fake_snapshot
from tools.rollout import Member, RolloutError, plan, rollout


class FakeFleet:
    """Three members; records every action and lets a test make health fail."""

    def __init__(self, leader: str = "openbao-1", healthy_after: int = 0) -> None:
        self.names = ["openbao-0", "openbao-1", "openbao-2"]
        self.leader = leader
        self.actions: list[str] = []
        self.health_checks = 0
        self.healthy_after = healthy_after
        self.never_healthy_after_restart_of: str | None = None

    def members(self) -> list[Member]:
        return [Member(n, n == self.leader) for n in self.names]

    def restart(self, name: str) -> None:
        self.actions.append(f"restart {name}")
        if name == self.leader:
            raise AssertionError("restarted the leader while it was still active")

    def step_down(self) -> None:
        self.actions.append(f"step-down {self.leader}")
        self.leader = next(n for n in self.names if n != self.leader)

    def healthy(self) -> bool:
        self.health_checks += 1
        if self.never_healthy_after_restart_of and f"restart {self.never_healthy_after_restart_of}" in self.actions:
            return False
        return self.health_checks > self.healthy_after


def test_standbys_first_then_leader_after_step_down() -> None:
    fleet = FakeFleet(leader="openbao-1")
    order = rollout(fleet, log=lambda _: None, interval=0)
    assert order == ["openbao-0", "openbao-2", "openbao-1"]
    assert fleet.actions == ["restart openbao-0", "restart openbao-2", "step-down openbao-1", "restart openbao-1"]


def test_waits_for_health_before_each_step() -> None:
    fleet = FakeFleet(healthy_after=3)
    rollout(fleet, log=lambda _: None, interval=0)
    assert fleet.health_checks >= 4 + 3  # initial waits, then one check after each of 3 restarts


def test_stops_when_the_cluster_does_not_recover() -> None:
    fleet = FakeFleet(leader="openbao-2")
    fleet.never_healthy_after_restart_of = "openbao-0"
    with pytest.raises(RolloutError, match="after restarting openbao-0"):
        rollout(fleet, log=lambda _: None, timeout=0.2, interval=0.01)
    assert fleet.actions == ["restart openbao-0"], "went on after an unhealthy step"


@pytest.mark.parametrize("actives", [[], ["a", "b"]])
def test_refuses_without_exactly_one_leader(actives: list[str]) -> None:
    with pytest.raises(RolloutError, match="exactly one active node"):
        plan([Member(n, n in actives) for n in ("a", "b", "c")])


# --- pre-upgrade snapshot: taken and verified before the first pod is touched -------------

def _snapshot_file(path, *, corrupt: bool = False):
    path.write_bytes(fake_snapshot(42, corrupt=corrupt))
    return path


def test_pre_upgrade_snapshot_is_taken_and_verified_before_the_first_restart(tmp_path) -> None:
    fleet = FakeFleet(leader="openbao-1")
    logged: list[str] = []

    def take():
        fleet.actions.append("snapshot")
        return _snapshot_file(tmp_path / "pre.snap")

    rollout(fleet, log=logged.append, interval=0, snapshot=take)
    assert fleet.actions[0] == "snapshot" and fleet.actions[1] == "restart openbao-0", fleet.actions
    assert any("pre-upgrade snapshot" in line and "verified" in line for line in logged)


@pytest.mark.parametrize("failure", ["corrupt", "not-a-snapshot", "save-fails"])
def test_a_bad_pre_upgrade_snapshot_stops_before_any_restart(tmp_path, failure: str) -> None:
    import subprocess

    fleet = FakeFleet()

    def take():
        if failure == "save-fails":
            raise subprocess.CalledProcessError(2, ["bao"], stderr="permission denied")
        if failure == "not-a-snapshot":
            (tmp_path / "pre.snap").write_bytes(b"<html>proxy error</html>")
            return tmp_path / "pre.snap"
        return _snapshot_file(tmp_path / "pre.snap", corrupt=True)

    with pytest.raises(RolloutError, match="stopped before touching any pod"):
        rollout(fleet, log=lambda _: None, interval=0, snapshot=take)
    assert fleet.actions == [], "restarted a pod without a good snapshot"
