"""Full-volume faults for the e2e suite: fill a node's size-limited volume (the harness's
``volume_sizes`` tmpfs) with a ballast file until the kernel answers ENOSPC, free it again,
and read the Prometheus metrics a scrape would see.

A ballast file stands in for whatever fills a real PVC (audit growth, Raft growth, a
forgotten copy): OpenBao sees exactly what it sees then, ``no space left on device``.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import Optional

from tests.e2e.harness import BaoNode, HarnessError

BALLAST = "e2e-ballast"
MAX_VOLUME = 1 << 30  # fill() refuses anything bigger: it would be a real disk


def fill(directory: Path) -> int:
    """Write a ballast file in ``directory`` until the volume is full (ENOSPC down to the
    last byte); returns the bytes written. Unbuffered, so nothing is left to flush at close."""
    st = os.statvfs(directory)
    if st.f_blocks * st.f_frsize > MAX_VOLUME:  # never fill the host's own disk by mistake
        raise HarnessError(f"{directory} is not a small test volume ({st.f_blocks * st.f_frsize} bytes): "
                           "give the cluster volume_sizes for it")
    written = 0
    with open(directory / BALLAST, "wb", buffering=0) as f:
        for chunk in (1 << 20, 1 << 16, 4096, 512, 1):
            block = b"\0" * chunk
            while True:
                try:
                    written += f.write(block)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    break
    if available(directory) != 0:
        raise HarnessError(f"{directory} still has {available(directory)} bytes free after the ballast")
    return written


def free(directory: Path) -> None:
    """Remove the ballast: the space an operator frees (deletes old files, expands the PVC)."""
    (directory / BALLAST).unlink()


def available(directory: Path) -> int:
    """Bytes an unprivileged writer can still use (what kubelet_volume_stats_available_bytes reports)."""
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


def metric(node: BaoNode, name: str, token: Optional[str] = None) -> Optional[float]:
    """The value of the unlabelled sample ``name`` in the node's Prometheus metrics (an
    unauthenticated scrape, as Prometheus does, unless ``token``); None if absent."""
    resp = node.request("GET", "/v1/sys/metrics?format=prometheus", token=token)
    if resp.status != 200:
        raise HarnessError(f"metrics scrape of {node.name}: HTTP {resp.status} {resp.body}")
    found = re.search(rf"^{re.escape(name)} (\S+)$", str(resp.body), re.MULTILINE)
    return float(found.group(1)) if found else None
