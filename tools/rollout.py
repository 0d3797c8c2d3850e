"""Safe rolling restart of an OpenBao StatefulSet (upgrades, config changes, key rotation).

    python -m tools.rollout --namespace openbao [--name openbao] [--dry-run]
        [--snapshot-dir DIR | --no-snapshot]

The StatefulSet uses ``updateStrategy: OnDelete``, so nothing restarts until a pod is
deleted. This restarts the standbys first, one at a time, each only after the cluster is
healthy again; then steps the leader down and restarts it last. At every moment the
cluster keeps a Raft majority and, but for the step-down, a leader (docs/runbook-upgrade.md).
Before it touches the first pod it takes a Raft snapshot into ``--snapshot-dir`` (default
the current directory) and verifies it (gzipped tar, SHA256SUMS over meta.json and
state.bin, like the backup CronJob); a snapshot that fails stops the rollout before any
restart. The token then also needs ``read`` on ``sys/storage/raft/snapshot``.

Needs ``kubectl`` (pointing at the cluster) and ``bao`` with BAO_ADDR/BAO_CACERT and a
token that may ``sys/step-down`` and read autopilot state (the admin role). The ordering
logic is independent of Kubernetes: the e2e suite drives it against real OpenBao nodes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Protocol


@dataclass(frozen=True)
class Member:
    """One server: its pod name and whether it is the active (leader) node."""

    name: str
    active: bool


class Fleet(Protocol):
    """What the rollout needs from a cluster."""

    def members(self) -> list[Member]: ...

    def restart(self, name: str) -> None:
        """Restart one member and return once it is back, unsealed and serving."""

    def step_down(self) -> None:
        """Ask the active node to give up leadership."""

    def healthy(self) -> bool:
        """Autopilot reports every voter healthy."""


class RolloutError(RuntimeError):
    """The cluster did not get back to health in time; the rollout stopped there."""


def _wait(what: str, check: Callable[[], bool], timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise RolloutError(f"timed out after {timeout:.0f}s waiting for {what}; stopped the rollout here")


def verify_snapshot(path: Path) -> None:
    """A complete Raft snapshot: a gzipped tar whose SHA256SUMS matches meta.json and state.bin."""
    try:
        with tarfile.open(path, "r:gz") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    except (OSError, tarfile.TarError, EOFError) as err:
        raise RolloutError(f"pre-upgrade snapshot {path} is not a readable snapshot ({err}); "
                           "stopped before touching any pod") from None
    sums = {}
    for line in files.get("SHA256SUMS", b"").decode(errors="replace").splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            sums[name.strip().lstrip("*")] = digest
    for name in ("meta.json", "state.bin"):
        if name not in files or hashlib.sha256(files[name]).hexdigest() != sums.get(name):
            raise RolloutError(f"pre-upgrade snapshot {path}: {name} is missing or its checksum does not match; "
                               "stopped before touching any pod")


def plan(members: list[Member]) -> list[str]:
    """Standbys in name order, then the leader."""
    leaders = [m.name for m in members if m.active]
    if len(leaders) != 1:
        raise RolloutError(f"expected exactly one active node, found {leaders or 'none'}: fix that first")
    return sorted(m.name for m in members if not m.active) + leaders


def rollout(fleet: Fleet, log: Callable[[str], None] = print, timeout: float = 600,
            interval: float = 2.0, snapshot: Optional[Callable[[], Path]] = None) -> list[str]:
    """Restart every member in a safe order; returns the order used.

    ``snapshot``: takes a pre-upgrade snapshot and returns its file; it is verified before the
    first restart, and any failure stops the rollout with nothing restarted."""
    _wait("a healthy cluster before starting", fleet.healthy, timeout, interval)
    order = plan(fleet.members())
    if snapshot is not None:
        try:
            path = snapshot()
        except (OSError, subprocess.CalledProcessError) as err:
            detail = getattr(err, "stderr", "") or err
            raise RolloutError(f"pre-upgrade snapshot failed ({detail}); stopped before touching any pod") from None
        verify_snapshot(path)
        log(f"pre-upgrade snapshot {path} ({path.stat().st_size} bytes) verified")
    *standbys, leader = order
    for name in standbys:
        log(f"restarting standby {name}")
        fleet.restart(name)
        _wait(f"every voter healthy after restarting {name}", fleet.healthy, timeout, interval)
    log(f"stepping down the leader {leader}")
    fleet.step_down()
    _wait(f"a new leader other than {leader}",
          lambda: any(m.active and m.name != leader for m in fleet.members()), timeout, interval)
    log(f"restarting former leader {leader}")
    fleet.restart(leader)
    _wait(f"every voter healthy after restarting {leader}", fleet.healthy, timeout, interval)
    log("rollout complete: " + ", ".join(order))
    return order


class KubectlFleet:
    """A StatefulSet reached through kubectl and bao (see module docstring)."""

    def __init__(self, namespace: str, name: str, timeout: float = 600) -> None:
        self.namespace = namespace
        self.name = name
        self.timeout = timeout

    def _kubectl(self, *args: str) -> str:
        return subprocess.run(["kubectl", "-n", self.namespace, *args], check=True, capture_output=True,
                              text=True).stdout

    def members(self) -> list[Member]:
        pods = json.loads(self._kubectl("get", "pods", "-l", f"app.kubernetes.io/instance={self.name},"
                                        "app.kubernetes.io/name=openbao", "-o", "json"))["items"]
        return [Member(p["metadata"]["name"], p["metadata"].get("labels", {}).get("openbao-active") == "true")
                for p in pods]

    def restart(self, name: str) -> None:
        self._kubectl("delete", "pod", name, "--wait=true")
        _wait(f"pod {name} to be recreated", lambda: name in {m.name for m in self.members()}, self.timeout, 2)
        self._kubectl("wait", "--for=condition=Ready", f"--timeout={int(self.timeout)}s", f"pod/{name}")

    def step_down(self) -> None:
        subprocess.run(["bao", "operator", "step-down"], check=True, capture_output=True, text=True)

    def healthy(self) -> bool:
        done = subprocess.run(["bao", "operator", "raft", "autopilot", "state", "-format=json"],
                              capture_output=True, text=True)
        return done.returncode == 0 and bool(json.loads(done.stdout).get("healthy"))

    @staticmethod
    def snapshot(directory: Path) -> Path:
        """``bao operator raft snapshot save`` through BAO_ADDR into ``directory``."""
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"openbao-pre-upgrade-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.snap"
        subprocess.run(["bao", "operator", "raft", "snapshot", "save", str(path)], check=True, capture_output=True,
                       text=True)
        return path


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.rollout", description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--name", default="openbao", help="the stack's `name` setting")
    parser.add_argument("--timeout", type=float, default=600, help="seconds to wait for health at each step")
    parser.add_argument("--dry-run", action="store_true", help="print the order, restart nothing")
    parser.add_argument("--snapshot-dir", type=Path, default=Path("."),
                        help="where the verified pre-upgrade snapshot goes (default: the current directory)")
    parser.add_argument("--no-snapshot", action="store_true", help="skip the pre-upgrade snapshot (not recommended)")
    args = parser.parse_args(argv)
    fleet = KubectlFleet(args.namespace, args.name, args.timeout)
    try:
        if args.dry_run:
            print("would restart, in order: " + ", ".join(plan(fleet.members())))
            return 0
        take = None if args.no_snapshot else (lambda: fleet.snapshot(args.snapshot_dir))
        rollout(fleet, timeout=args.timeout, snapshot=take)
    except (RolloutError, subprocess.CalledProcessError) as err:
        print(f"rollout: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
