"""Benchmark real OpenBao clusters on loopback, built from the rendered prod config.

    python -m tools.bench_e2e [--runs 5] [--sizes 3,5]

For each cluster size it prints the median (and min/max) over ``--runs`` fresh clusters of
  bring-up   seconds from starting every process to initialised + all voters healthy
  failover   seconds from `kill -9` of the leader to the first write a new leader accepts
  rotation   client errors during a server-certificate rotation, and seconds until every
             node serves the new serial (OpenBao's tls_auto_reload)
Figures, not assertions: the tests check behaviour, this measures it. Uses the e2e harness
(tests/e2e) on 127.0.3.x so it never collides with a test run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from tests.e2e.harness import BaoCluster, BaoNode, Rendered, render, wait_until
from tests.e2e.rotation import Rotation

IP_BASE = "127.0.3.11"


@dataclass
class Figures:
    bring_up: list[float] = field(default_factory=list)
    failover: list[float] = field(default_factory=list)
    rotation_errors: list[float] = field(default_factory=list)
    rotation_seconds: list[float] = field(default_factory=list)


def bring_up(cluster: BaoCluster) -> tuple[float, str]:
    """Start every node at once; seconds until all are unsealed voters and autopilot is healthy."""
    start = time.monotonic()
    token = cluster.start_healthy(timeout=180)
    return time.monotonic() - start, token


def failover(cluster: BaoCluster, token: str) -> float:
    """Kill -9 the leader; seconds until a surviving node accepts a write."""
    leader = cluster.wait_leader()
    survivors = [n for n in cluster.nodes if n is not leader]
    start = time.monotonic()
    leader.kill()

    def accepted() -> Optional[BaoNode]:
        for node in survivors:
            try:
                resp = node.request("POST", "secret/data/bench/failover", {"data": {"t": str(start)}},
                                    token=token, timeout=2)
            except OSError:
                continue
            if resp.status == 200:
                return node
        return None

    wait_until("a write accepted after the leader was killed", accepted, timeout=120, interval=0.05)
    return time.monotonic() - start


def run_once(rendered: Rendered, figures: Figures) -> None:
    with BaoCluster(rendered, ip_base=IP_BASE) as cluster:
        rotation = Rotation.prepare(cluster)  # nodes serve a cert from a CA whose key we hold
        seconds, token = bring_up(cluster)
        figures.bring_up.append(seconds)
        rotation.seed(token)
        traffic, delays, _ = rotation.rotate(token)
        figures.rotation_errors.append(len(traffic.errors))
        figures.rotation_seconds.append(max(delays.values()))
        figures.failover.append(failover(cluster, token))


def summary(name: str, values: list[float], unit: str) -> str:
    if not values:
        return f"  {name:<22} n/a"
    return (f"  {name:<22} median {statistics.median(values):7.2f}{unit}   "
            f"min {min(values):7.2f}{unit}   max {max(values):7.2f}{unit}   (n={len(values)})")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_e2e", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="3,5", help="comma-separated cluster sizes (odd)")
    args = parser.parse_args(argv)
    for size in (int(s) for s in args.sizes.split(",")):
        with tempfile.TemporaryDirectory(prefix=f"bench-render-{size}-") as out:
            rendered = render("prod", Path(out), overrides={"replicas": size})
            figures = Figures()
            for i in range(args.runs):
                run_once(rendered, figures)
                print(f"[{size} nodes] run {i + 1}/{args.runs}: bring-up {figures.bring_up[-1]:.2f}s, "
                      f"failover {figures.failover[-1]:.2f}s, rotation errors {figures.rotation_errors[-1]:.0f} "
                      f"({figures.rotation_seconds[-1]:.1f}s)", file=sys.stderr, flush=True)
        print(f"{size}-node cluster (prod config, {args.runs} runs):")
        print(summary("bring-up to healthy", figures.bring_up, "s"))
        print(summary("leader kill to write", figures.failover, "s"))
        print(summary("rotation errors", figures.rotation_errors, ""))
        print(summary("rotation to new serial", figures.rotation_seconds, "s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
