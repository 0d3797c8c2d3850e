"""Certificate rotation under load, shared by the e2e test and tools.bench_e2e.

A CA whose key the test keeps, the kubelet's Secret-volume swap, and continuous verified-TLS
clients on new and kept-alive connections that record every served certificate and error.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.e2e.certs import TestCA, cert_sans
from tests.e2e.harness import (API_PORT, BaoCluster, BaoNode, _PinnedHTTPSConnection, _verified_context,
                               wait_until, write_secret_volume)

KV_PATH = "/v1/secret/data/e2e/rotation"
RELOAD_LOG = "tls auto-reload: reloaded TLS certificate"


class Traffic(threading.Thread):
    """Continuous verified-TLS clients on every node: GET sys/health on a new connection each
    time (records which certificate was served) and an authenticated KV read on one
    kept-alive connection per node that lives across the rotation."""

    def __init__(self, nodes: list[BaoNode], ca_file: Path, token: str) -> None:
        super().__init__(daemon=True)
        self.nodes, self.ca_file, self.token = nodes, ca_file, token
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.errors: list[str] = []
        self.served: dict[str, list[tuple[float, bytes]]] = {n.name: [] for n in nodes}
        self.kept_alive: dict[str, int] = {n.name: 0 for n in nodes}
        self.kept_alive_reconnects: dict[str, int] = {n.name: 0 for n in nodes}
        self.new_conn: dict[str, int] = {n.name: 0 for n in nodes}

    def _error(self, node: BaoNode, what: str) -> None:
        with self.lock:
            self.errors.append(f"{time.strftime('%H:%M:%S')} {node.name}: {what}")

    def run(self) -> None:
        ctx = _verified_context(self.ca_file)
        keep = {n.name: _PinnedHTTPSConnection(n.ip, API_PORT, n.host, ctx, 10.0) for n in self.nodes}
        socks: dict[str, object] = {}
        try:
            while not self.stop_event.is_set():
                for node in self.nodes:
                    self._fresh_health(node, ctx)
                    self._kept_alive_read(node, keep[node.name], socks)
                time.sleep(0.02)
        finally:
            for conn in keep.values():
                conn.close()

    def _fresh_health(self, node: BaoNode, ctx: ssl.SSLContext) -> None:
        conn = _PinnedHTTPSConnection(node.ip, API_PORT, node.host, ctx, 10.0)
        try:
            conn.request("GET", "/v1/sys/health?standbyok=true")
            resp = conn.getresponse()
            resp.read()
            der = conn.sock.getpeercert(binary_form=True) if conn.sock else b""
            if resp.status != 200:
                self._error(node, f"health HTTP {resp.status}")
            else:
                with self.lock:
                    self.served[node.name].append((time.monotonic(), der))
                    self.new_conn[node.name] += 1
        except (OSError, http.client.HTTPException) as exc:
            self._error(node, f"health on a new connection: {exc!r}")
        finally:
            conn.close()

    def _kept_alive_read(self, node: BaoNode, conn: _PinnedHTTPSConnection, socks: dict) -> None:
        try:
            conn.request("GET", KV_PATH, headers={"X-Vault-Token": self.token})
            resp = conn.getresponse()
            body = resp.read()
            if resp.status != 200 or b'"rotation"' not in body:
                self._error(node, f"kept-alive KV read HTTP {resp.status} {body[:200]!r}")
                return
            with self.lock:
                if node.name in socks and socks[node.name] is not conn.sock:
                    self.kept_alive_reconnects[node.name] += 1
                socks[node.name] = conn.sock
                self.kept_alive[node.name] += 1
        except (OSError, http.client.HTTPException) as exc:
            self._error(node, f"kept-alive KV read: {exc!r}")
            conn.close()


def use_secret_volume(cluster: BaoCluster, files: dict[str, bytes]) -> Path:
    """Give every node's TLS directory the kubelet Secret-volume layout with ``files``."""
    cert_prod = cluster.rendered.server["listener"][0]["tcp"]["tls_cert_file"]
    tls_prod = str(Path(cert_prod).parent)
    for node in cluster.nodes:
        write_secret_volume(node.path(tls_prod), files)
    return Path(tls_prod)


@dataclass
class Rotation:
    """A cluster prepared for rotation: nodes serve ``cert1`` from a kubelet-style volume."""

    cluster: BaoCluster
    ca: TestCA
    subject: x509.Name
    sans: x509.SubjectAlternativeName
    tls_prod: Path
    der1: bytes

    @classmethod
    def prepare(cls, cluster: BaoCluster) -> "Rotation":
        """Before ``cluster.start()``: our CA and a first cert on every node."""
        subject, sans = cert_sans((cluster.rendered.root / "tls" / "tls.crt").read_bytes())
        ca = TestCA("e2e rotation CA")
        cert1, key1 = ca.issue(subject, sans)
        tls_prod = use_secret_volume(cluster, ca.secret_files(cert1, key1))
        return cls(cluster, ca, subject, sans, tls_prod, cert1.public_bytes(serialization.Encoding.DER))

    def seed(self, token: str) -> None:
        """The KV entry the kept-alive clients read, replicated to every node before traffic starts."""
        put = self.cluster.wait_leader().request("POST", KV_PATH, {"data": {"rotation": "yes"}}, token=token)
        assert put.status == 200, put.body
        wait_until("the seeded entry readable on every node", lambda: all(
            n.request("GET", KV_PATH, token=token).status == 200 for n in self.cluster.nodes), timeout=60)

    def rotate(self, token: str, timeout: float = 60) -> tuple[Traffic, dict[str, float], bytes]:
        """Swap a new cert in under client traffic; returns the traffic, the seconds from swap to
        new serial per node, and the new cert (DER). Raises if a node never serves it."""
        nodes = self.cluster.nodes
        traffic = Traffic(nodes, self.cluster.ca_file, token)
        traffic.start()
        try:
            wait_until("client traffic on every node", lambda: all(
                traffic.new_conn[n] >= 5 and traffic.kept_alive[n] >= 5 for n in traffic.new_conn), timeout=60)
            cert2, key2 = self.ca.issue(self.subject, self.sans)
            der2 = cert2.public_bytes(serialization.Encoding.DER)
            swapped: dict[str, float] = {}
            for node in nodes:
                write_secret_volume(node.path(str(self.tls_prod)), self.ca.secret_files(cert2, key2))
                swapped[node.name] = time.monotonic()

            def first_new(name: str) -> Optional[float]:
                with traffic.lock:
                    return next((t for t, der in traffic.served[name] if der == der2), None)

            wait_until("the new serial on every node", lambda: all(first_new(n.name) for n in nodes),
                       timeout=timeout, interval=0.2, on_timeout=self.cluster.log_tails)
            delays = {n.name: first_new(n.name) - swapped[n.name] for n in nodes}
            # keep the clients running a little past the switch: the kept-alive connections too
            seen = dict(traffic.kept_alive)
            wait_until("more kept-alive reads after the switch",
                       lambda: all(traffic.kept_alive[n] >= seen[n] + 5 for n in seen), timeout=60)
        finally:
            traffic.stop_event.set()
            traffic.join(timeout=30)
        return traffic, delays, der2

