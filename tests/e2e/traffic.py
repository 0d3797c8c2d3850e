"""Continuous client traffic for the fault scenarios: a bounded writer that records every
write the cluster acknowledged, and the check that each one is still readable afterwards.

A write counts only when OpenBao answered 200: that is the promise a client relies on.
Writes that timed out or were refused are counted as attempts, never as acknowledged.
"""

from __future__ import annotations

import http.client
import threading
import time
from dataclasses import dataclass, field
from typing import Iterable, Optional

from tests.e2e.harness import BaoCluster, BaoNode


@dataclass
class WriteRecord:
    """One acknowledged write: its key, the node that accepted it and when (monotonic)."""

    key: int
    node: str
    at: float


@dataclass(eq=False)
class Writer(threading.Thread):
    """Writes numbered keys under ``prefix`` to whichever running node is active, at most
    ``limit`` of them, and remembers each acknowledged one."""

    cluster: BaoCluster
    token: str
    prefix: str = "faults"
    limit: int = 100_000
    interval: float = 0.02
    timeout: float = 3.0
    nodes: Optional[Iterable[BaoNode]] = None
    accepted: list[WriteRecord] = field(default_factory=list)
    attempts: int = 0
    stop_event: threading.Event = field(default_factory=threading.Event)
    error: Optional[BaseException] = None
    """What killed the thread, if anything did: finish() raises it, so a dead writer is never
    mistaken for a cluster that stopped acknowledging."""

    def __post_init__(self) -> None:
        threading.Thread.__init__(self, daemon=True)

    def _candidates(self) -> list[BaoNode]:
        return list(self.nodes) if self.nodes is not None else self.cluster.running()

    def _active(self) -> Optional[BaoNode]:
        for node in self._candidates():
            try:
                if node.running() and node.is_active():
                    return node
            except Exception:  # a node mid-restart or unreachable: try the next one
                continue
        return None

    def run(self) -> None:
        try:
            self._write_until_stopped()
        except BaseException as exc:  # noqa: BLE001 - re-raised by finish()
            self.error = exc
            raise

    def _write_until_stopped(self) -> None:
        key = 0
        while not self.stop_event.is_set() and key < self.limit:
            node = self._active()
            if node is not None:
                self.attempts += 1
                try:
                    resp = node.request("POST", f"secret/data/{self.prefix}/{key}", {"data": {"i": str(key)}},
                                        token=self.token, timeout=self.timeout)
                    if resp.status == 200:
                        self.accepted.append(WriteRecord(key, node.name, time.monotonic()))
                        key += 1
                except (OSError, http.client.HTTPException):  # refused, timed out, cut mid-answer
                    pass
            self.stop_event.wait(self.interval)

    def count(self) -> int:
        return len(self.accepted)

    def first_accepted_after(self, moment: float) -> Optional[WriteRecord]:
        """The first acknowledged write at or after ``moment`` (time.monotonic())."""
        return next((r for r in list(self.accepted) if r.at >= moment), None)

    def wait_for_more(self, than: int, timeout: float = 30) -> None:
        """Block until more than ``than`` writes were acknowledged (the cluster serves)."""
        deadline = time.monotonic() + timeout
        while self.count() <= than:
            if self.error is not None:
                raise AssertionError(f"the writer died: {self.error!r}") from self.error
            if time.monotonic() > deadline:
                raise AssertionError(f"no write acknowledged for {timeout:.0f} s (still {than}; "
                                     f"{self.attempts} attempts)")
            time.sleep(0.1)

    def finish(self) -> None:
        self.stop_event.set()
        self.join(timeout=self.timeout + 5)
        if self.error is not None:
            raise AssertionError(f"the writer died: {self.error!r}") from self.error


def lost_writes(node: BaoNode, token: str, writer: Writer) -> list[int]:
    """Keys the cluster acknowledged to ``writer`` that ``node`` cannot read back now."""
    lost = []
    for record in list(writer.accepted):
        got = node.request("GET", f"secret/data/{writer.prefix}/{record.key}", token=token, timeout=10)
        if got.status != 200 or got.body["data"]["data"] != {"i": str(record.key)}:
            lost.append(record.key)
    return lost
