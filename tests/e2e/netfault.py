"""Network faults between the nodes of an e2e cluster: a private network of namespaces.

Why not filter the host loopback: on one shared network stack a node's outgoing connections
leave from 127.0.0.1 (``ip route get 127.0.31.12`` says ``src 127.0.0.1``), whoever opens
them, so no packet filter can tell node A's traffic to B from node C's. And `lo` is shared
with every other test and the machine. So each node gets its own network namespace:

    hub netns  (the "network": a router; the test's own threads and the fake Kubernetes API
     |          live here, on ``hub_ip``, e.g. 127.0.31.10)
     +-- veth -- node netns 0 (127.0.31.11)   +-- veth -- node netns 1 (127.0.31.12) ...

Node addresses stay the test file's loopback range (``route_localnet`` lets 127.x travel on
the veths), traffic between nodes is routed by the hub, and each packet's source address is
its node's. A partition is a pair of ``ip rule ... blackhole`` rules per cut link in the hub:
the router silently drops those packets both ways (senders see timeouts, as on a real
network), and every other flow (the test client to every node, nodes to the fake Kubernetes
API, the nodes on the other side) is untouched. Nothing outside the namespaces changes; they
are deleted on exit, and namespaces left by a killed run (their creator's pid is gone) are
removed on the next start.

The calling thread is moved into the hub while the lab is entered (``setns``), so the
harness, the traffic writer and the fake Kubernetes API reach the nodes as before; children
(bao CLI) inherit it. Node processes start in their own namespace through
``BaoNode.wrap = lab.wrap(ip)`` (an ``nsenter`` prefix).

Needs: root, iproute2 (``ip``), util-linux (``nsenter``), and a kernel with network
namespaces, veth and policy routing (CONFIG_NET_NS, CONFIG_VETH, CONFIG_IP_MULTIPLE_TABLES:
every distribution kernel). A missing piece fails the test with the command that fixes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import shutil
import subprocess
import threading
from typing import Iterator, NoReturn, Optional, Sequence

import pytest

PREFIX = "e2e-nf-"
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
INSTALL = "apt-get install -y iproute2 util-linux"
_RULE_PREF = itertools.count(1000)  # our ip rule priorities in the hub (lookup local is 0)


def _fail(what: str, detail: str = "") -> NoReturn:
    pytest.fail(f"netfault: {what}. The partition tests need root, `ip` (iproute2) and `nsenter` "
                f"(util-linux): `{INSTALL}`, and a kernel with network namespaces, veth and policy "
                f"routing (CONFIG_NET_NS, CONFIG_VETH, CONFIG_IP_MULTIPLE_TABLES).{detail}", pytrace=False)


def _run(*argv: str) -> str:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def _setns(fd: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


def remove_stale() -> list[str]:
    """Delete namespaces a previous, killed run left (``e2e-nf-<pid>-...`` with a dead pid)."""
    removed = []
    if not os.path.isdir(NETNS_DIR):
        return removed
    for name in os.listdir(NETNS_DIR):
        if not name.startswith(PREFIX):
            continue
        pid = name[len(PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not os.path.exists(f"/proc/{pid}"):
            subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)
            removed.append(name)
    return removed


class NetLab:
    """Per-node network namespaces behind a router namespace; ``partition()`` cuts links."""

    def __init__(self, hub_ip: str, node_ips: Sequence[str]):
        self.hub_ip = hub_ip
        self.node_ips = list(node_ips)
        tag = f"{PREFIX}{os.getpid()}-{hub_ip.rsplit('.', 2)[-2]}"
        self.hub = f"{tag}-hub"
        self.node_ns = {ip: f"{tag}-n{i}" for i, ip in enumerate(self.node_ips)}
        self._home: Optional[int] = None
        self._thread: Optional[threading.Thread] = None
        self._made: list[str] = []
        self._rules: set[int] = set()

    # ---- lifecycle
    def __enter__(self) -> "NetLab":
        self._check_tools()
        remove_stale()
        try:
            self._build()
            self._enter_hub()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Leave the hub (back to the thread's own namespace), drop every rule, delete the namespaces."""
        if self._home is not None:
            if threading.current_thread() is not self._thread:
                raise RuntimeError("NetLab must be closed by the thread that entered it")
            _setns(self._home)
            os.close(self._home)
            self._home = None
        for pref in sorted(self._rules):
            subprocess.run(["ip", "-n", self.hub, "rule", "del", "pref", str(pref)], capture_output=True, timeout=30)
        self._rules.clear()
        errors = []
        for name in reversed(self._made):
            proc = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True, timeout=30)
            if proc.returncode != 0:
                errors.append(f"{name}: {proc.stderr.strip()}")
        self._made.clear()
        if errors:
            raise RuntimeError(f"netfault: could not delete namespaces: {errors}")

    @staticmethod
    def _check_tools() -> None:
        missing = [tool for tool in ("ip", "nsenter") if not shutil.which(tool)]
        if missing:
            _fail(f"{' and '.join(missing)} not found on PATH")
        if os.geteuid() != 0:
            _fail("not running as root (network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN)")

    def _sysctl(self, ns: str, settings: dict[str, str]) -> None:
        script = "; ".join(f"echo {v} > /proc/sys/net/ipv4/{k.replace('.', '/')}" for k, v in settings.items())
        _run("nsenter", f"--net={NETNS_DIR}/{ns}", "sh", "-ec", script)

    def _new_ns(self, name: str) -> None:
        try:
            _run("ip", "netns", "add", name)
        except RuntimeError as exc:
            _fail("cannot create a network namespace", f"\n{exc}")
        self._made.append(name)
        _run("ip", "-n", name, "link", "set", "lo", "up")
        # 127.x may travel on the veths; strict reverse-path checks would drop the routed 127.x
        self._sysctl(name, {"conf.all.route_localnet": "1", "conf.default.route_localnet": "1",
                            "conf.all.rp_filter": "0", "conf.default.rp_filter": "0"})
        # 127.0.0.0/8 is "local" by default: only 127.0.0.1 stays local, the rest is routed
        _run("ip", "-n", name, "route", "del", "local", "127.0.0.0/8", "dev", "lo", "table", "local")

    def _build(self) -> None:
        self._new_ns(self.hub)
        # the hub routes between nodes; ip_nonlocal_bind lets the harness's "is the port free"
        # probe bind a node's address from here (the node's own namespace is fresh: always free)
        self._sysctl(self.hub, {"ip_forward": "1", "ip_nonlocal_bind": "1"})
        _run("ip", "-n", self.hub, "addr", "add", f"{self.hub_ip}/32", "dev", "lo")
        for i, ip in enumerate(self.node_ips):
            ns, hub_end = self.node_ns[ip], f"nf{i}"
            self._new_ns(ns)
            try:
                _run("ip", "link", "add", hub_end, "netns", self.hub, "type", "veth", "peer", "name", "eth0",
                     "netns", ns)
            except RuntimeError as exc:
                _fail("cannot create a veth pair", f"\n{exc}")
            self._sysctl(self.hub, {f"conf.{hub_end}.route_localnet": "1", f"conf.{hub_end}.rp_filter": "0"})
            _run("ip", "-n", self.hub, "link", "set", hub_end, "up")
            _run("ip", "-n", self.hub, "route", "add", f"{ip}/32", "dev", hub_end, "src", self.hub_ip)
            _run("ip", "-n", ns, "addr", "add", f"{ip}/32", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
            _run("ip", "-n", ns, "route", "add", f"{self.hub_ip}/32", "dev", "eth0", "src", ip)
            _run("ip", "-n", ns, "route", "add", "default", "via", self.hub_ip, "dev", "eth0", "src", ip)
        try:  # the partition primitive must exist before a test relies on it
            pref = next(_RULE_PREF)
            _run("ip", "-n", self.hub, "rule", "add", "pref", str(pref), "from", "127.0.0.2", "to", "127.0.0.3",
                 "blackhole")
            _run("ip", "-n", self.hub, "rule", "del", "pref", str(pref))
        except RuntimeError as exc:
            _fail("policy routing (`ip rule ... blackhole`) does not work", f"\n{exc}")

    def _enter_hub(self) -> None:
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        hub = os.open(f"{NETNS_DIR}/{self.hub}", os.O_RDONLY)
        try:
            _setns(hub)
        except OSError:
            os.close(home)
            raise
        finally:
            os.close(hub)
        self._home, self._thread = home, threading.current_thread()

    # ---- use
    def wrap(self, ip: str) -> list[str]:
        """argv prefix that runs a command in the namespace of the node at ``ip``."""
        return [shutil.which("nsenter") or "nsenter", f"--net={NETNS_DIR}/{self.node_ns[ip]}"]

    def cut(self, side_a: Sequence[str], side_b: Sequence[str]) -> list[int]:
        """Drop every packet between each address of ``side_a`` and each of ``side_b``, both
        ways, in the hub. Returns the rule priorities (``heal`` takes them)."""
        prefs = []
        try:
            for a, b in itertools.product(side_a, side_b):
                for src, dst in ((a, b), (b, a)):
                    pref = next(_RULE_PREF)
                    _run("ip", "-n", self.hub, "rule", "add", "pref", str(pref), "from", src, "to", dst, "blackhole")
                    prefs.append(pref)
                    self._rules.add(pref)
        except BaseException:
            self.heal(prefs)
            raise
        return prefs

    def heal(self, prefs: Sequence[int]) -> None:
        """Remove the rules ``cut`` made."""
        errors = []
        for pref in prefs:
            proc = subprocess.run(["ip", "-n", self.hub, "rule", "del", "pref", str(pref)], capture_output=True,
                                  text=True, timeout=30)
            if proc.returncode != 0:
                errors.append(f"pref {pref}: {proc.stderr.strip()}")
            self._rules.discard(pref)
        if errors:
            raise RuntimeError(f"netfault: could not remove rules: {errors}")

    @contextlib.contextmanager
    def partition(self, side_a: Sequence[str], side_b: Sequence[str]) -> Iterator[list[int]]:
        """``cut`` for the duration of the block; healed on the way out, whatever happens."""
        prefs = self.cut(side_a, side_b)
        try:
            yield prefs
        finally:
            self.heal(prefs)
