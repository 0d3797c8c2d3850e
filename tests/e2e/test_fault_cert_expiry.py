"""Issue 13, scenario 6: the server certificate expires (nobody ran `pulumi up` in the renewal
window). docs/runbook-certificate-rotation.md, "Expired server certificate".

The probes are the rendered StatefulSet's, run the way the kubelet runs an exec probe: the
exact command, in the container's environment, with the container's mount paths mapped to
the node's files and 127.0.0.1 (the pod's own loopback) to the node's address, verifying the
same name. Before issue 13 liveness verified the certificate's validity period, so an expired
certificate failed it on every pod at once: the kubelet would have killed the whole cluster
after a minute, and the (equally strict) startup probe again every five, in a loop no restart
could end. Now an expired certificate makes the pods NotReady (traffic stops) and restarts
nothing, Raft carries on over the cluster port, and renewal (the kubelet swapping the new
Secret in, tls_auto_reload loading it) restores service in the same processes with no
acknowledged write lost.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from openbao_platform.monitoring import renewal_time
from openbao_platform.settings import parse_settings
from tests.e2e.harness import (API_PORT, CLUSTER_PORT, BaoCluster, BaoNode, Rendered, _PinnedHTTPSConnection,
                               _verified_context, render, served_certificate, wait_until, write_secret_volume)
from tests.e2e.rotation import Rotation
from tests.e2e.traffic import Writer, lost_writes
from tests.support.program import stack_config

IP_BASE = "127.0.35.11"  # this file's loopback range (127.0.35.x): files run in parallel
#: Lifetime of the certificate that expires during the test, from the moment it is issued.
LIFETIME = 15.0
#: The name the probes verify: the pod's own loopback address (an IP SAN of the certificate).
POD_LOOPBACK = "127.0.0.1"
#: Go's wording for a served certificate outside its validity period.
EXPIRED = "x509: certificate has expired or is not yet valid"
#: The liveness (and startup) command as rendered before issue 13, kept to show what it did.
OLD_LIVENESS = ["bao", "read", "-format=json", f"-address=https://127.0.0.1:{API_PORT}",
                "-ca-cert=/openbao/tls/ca.crt", "sys/health", "standbyok=true", "sealedcode=204", "uninitcode=204"]
#: OpenSSL's X509_V_FLAG_NO_CHECK_TIME: verify chain and name, not the validity period.
_NO_CHECK_TIME = 0x200000


@dataclass(frozen=True)
class ProbeResult:
    """What the kubelet records of one probe run: success, and the output shown in events."""

    ok: bool
    output: str


@dataclass(frozen=True)
class Kubelet:
    """The server container's probes and mounts from the rendered StatefulSet."""

    probes: dict[str, dict[str, Any]]
    mounts: list[str]

    @classmethod
    def from_render(cls, rendered: Rendered) -> "Kubelet":
        (path,) = sorted((rendered.root.parent / "manifests").glob("*statefulset*.yaml"))
        sts = yaml.safe_load(path.read_text())
        (c,) = [c for c in sts["spec"]["template"]["spec"]["containers"] if c["name"] == "openbao"]
        probes = {k: c[k] for k in ("startupProbe", "livenessProbe", "readinessProbe")}
        return cls(probes, [m["mountPath"] for m in c["volumeMounts"]])

    def acts_after(self, probe: str) -> int:
        """Seconds of consecutive failures after which the kubelet acts: kills the container
        (startup, liveness) or marks the pod NotReady (readiness)."""
        spec = self.probes[probe]
        return spec["failureThreshold"] * spec["periodSeconds"]

    def command_for(self, node: BaoNode, command: list[str]) -> list[str]:
        """``command`` as it runs in ``node``'s container: mount paths and the pod's loopback mapped."""
        mounts = "|".join(re.escape(m) for m in sorted(self.mounts, key=len, reverse=True))
        path = re.compile(rf"(?<![\w/.])({mounts})(?=/)")
        out = []
        for arg in command:
            arg = arg.replace(f"https://{POD_LOOPBACK}:{API_PORT}", f"https://{node.ip}:{API_PORT}")
            out.append(path.sub(lambda m: str(node.path(m.group(1))), arg))
        return out

    def run(self, node: BaoNode, probe: str, command: Optional[list[str]] = None) -> ProbeResult:
        """One exec probe: exit 0 within timeoutSeconds is success, anything else failure."""
        spec = self.probes[probe]
        argv = self.command_for(node, command or spec["exec"]["command"])
        env = {**node.env, "BAO_TLS_SERVER_NAME": POD_LOOPBACK}
        try:
            proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=spec["timeoutSeconds"])
        except subprocess.TimeoutExpired:
            return ProbeResult(False, f"timed out after {spec['timeoutSeconds']} s")
        return ProbeResult(proc.returncode == 0, (proc.stdout + proc.stderr).strip())

    def all(self, node: BaoNode) -> dict[str, ProbeResult]:
        return {p: self.run(node, p) for p in self.probes}


def ignoring_time(ca_file: Path) -> ssl.SSLContext:
    """Our CA and the pod name verified, the validity period not: a client that still reaches
    the cluster while the certificate is expired (only to observe Raft, never a product client)."""
    ctx = _verified_context(ca_file)
    ctx.verify_flags |= _NO_CHECK_TIME
    return ctx


def request(node: BaoNode, ctx: ssl.SSLContext, method: str, path: str, token: str = "",
            body: Optional[dict[str, Any]] = None) -> tuple[int, Any]:
    """(status, JSON body) of one request over ``ctx``."""
    conn = _PinnedHTTPSConnection(node.ip, API_PORT, node.host, ctx, 5.0)
    try:
        headers = {"X-Vault-Token": token, "Content-Type": "application/json"} if token else {}
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def active_names(cluster: BaoCluster, ctx: ssl.SSLContext) -> list[str]:
    """The nodes reporting themselves active, asked over ``ctx``."""
    return [n.name for n in cluster.nodes
            if request(n, ctx, "GET", "/v1/sys/health?standbyok=true")[1].get("standby") is False]


def install(cluster: BaoCluster, rotation: Rotation, cert: x509.Certificate, key: bytes) -> None:
    """The kubelet's Secret-volume swap on every node."""
    for node in cluster.nodes:
        write_secret_volume(node.path(str(rotation.tls_prod)), rotation.ca.secret_files(cert, key))


def cluster_port_certificate(node: BaoNode) -> x509.Certificate:
    """What the cluster port presents for request forwarding: read, not verified (it is OpenBao's
    own self-signed certificate, made by the active node; none of our files is involved)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
    ctx.set_alpn_protocols(["req_fw_sb-act_v1"])
    with socket.create_connection((node.ip, CLUSTER_PORT), 5) as sock, ctx.wrap_socket(sock) as tls:
        return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True))


def serves(cluster: BaoCluster, der: bytes) -> bool:
    """Every node serves ``der`` on a new, verified connection."""
    return all(served_certificate(n.ip, API_PORT, n.host, cluster.ca_file) == der for n in cluster.nodes)


def test_expired_certificate_makes_pods_not_ready_without_restarts_and_renewal_restores_them(make_cluster) -> None:
    """The probes restart nothing that a restart cannot fix: a joining node, an expired
    certificate. Readiness still tells the truth, Raft keeps working, renewal heals in place."""
    cluster = make_cluster(ip_base=IP_BASE)
    kubelet = Kubelet.from_render(cluster.rendered)
    rotation = Rotation.prepare(cluster)
    lenient = ignoring_time(cluster.ca_file)

    # A node waiting to join (uninitialised) is alive but not ready: never restarted for it.
    waiting = cluster.nodes[1]
    cluster.start([waiting])
    wait_until("the joining node answers", lambda: waiting.health() is not None, timeout=30)
    assert waiting.health()["initialized"] is False
    early = kubelet.all(waiting)
    assert early["livenessProbe"].ok and early["startupProbe"].ok, early
    assert not early["readinessProbe"].ok, early
    cluster.start([n for n in cluster.nodes if n is not waiting])
    cluster.wait_unsealed(timeout=120)
    token = cluster.login_userpass(timeout=60)
    cluster.wait_voters_healthy(token, timeout=90)
    leader = cluster.wait_leader()
    pids = {n.name: n.proc.pid for n in cluster.nodes}
    for node in cluster.nodes:
        assert all(r.ok for r in kubelet.all(node).values()), (node.name, kubelet.all(node))

    writer = Writer(cluster, token, prefix="certexpiry")
    writer.start()
    writer.wait_for_more(20, timeout=30)

    # A certificate that expires in LIFETIME seconds (the last one `pulumi up` issued).
    not_after = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=LIFETIME)
    short, short_key = rotation.ca.issue(rotation.subject, rotation.sans, not_after=not_after)
    short_der = short.public_bytes(serialization.Encoding.DER)
    expires_at = time.monotonic() + (short.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).total_seconds()
    install(cluster, rotation, short, short_key)
    for node in cluster.nodes:
        node.hup()  # load it now rather than within tls_auto_reload's 10 s: it must be served before it expires
    wait_until("the short-lived certificate served", lambda: serves(cluster, short_der),
               timeout=max(1.0, expires_at - time.monotonic() - 4), interval=0.2)
    assert all(r.ok for r in kubelet.all(cluster.nodes[0]).values())

    # Readiness on every node until each fails: how long after notAfter the pods go NotReady.
    first_fail: dict[str, float] = {}
    while len(first_fail) < len(cluster.nodes) and time.monotonic() < expires_at + 15:
        for node in cluster.nodes:
            if node.name not in first_fail and not kubelet.run(node, "readinessProbe").ok:
                first_fail[node.name] = time.monotonic() - expires_at
        time.sleep(0.2)
    assert sorted(first_fail) == sorted(n.name for n in cluster.nodes), first_fail
    assert all(t >= -1.0 for t in first_fail.values()), f"readiness failed before expiry: {first_fail}"
    acked_before = writer.count()

    # Expired: the old liveness fails on every pod (the kubelet would restart them all), the new
    # startup and liveness pass, readiness fails with the expiry.
    for node in cluster.nodes:
        results = kubelet.all(node)
        old = kubelet.run(node, "livenessProbe", OLD_LIVENESS)
        assert not old.ok and EXPIRED in old.output, (node.name, old)
        assert results["livenessProbe"].ok and EXPIRED in results["livenessProbe"].output, (node.name, results)
        assert results["startupProbe"].ok, (node.name, results)
        assert not results["readinessProbe"].ok and EXPIRED in results["readinessProbe"].output, (node.name, results)

    # Raft is fine: a write through a standby is forwarded over the cluster port (OpenBao's own
    # certificates) and replicated; only clients that check the validity period are cut off.
    standby = next(n for n in cluster.nodes if n is not leader)
    status, _ = request(standby, lenient, "POST", "/v1/secret/data/certexpiry/during", token,
                        {"data": {"during": "expiry"}})
    assert status == 200
    for node in cluster.nodes:
        wait_until(f"the write replicated to {node.name}", lambda: request(
            node, lenient, "GET", "/v1/secret/data/certexpiry/during", token)[0] == 200, timeout=10)
    assert active_names(cluster, lenient) == [leader.name]  # no election while expired
    forwarding = cluster_port_certificate(leader)
    assert forwarding.issuer != rotation.ca.cert.subject and forwarding.not_valid_after_utc > not_after + \
        dt.timedelta(days=365), forwarding
    time.sleep(2)
    assert writer.count() == acked_before, "a client verifying TLS got a write acknowledged while expired"

    # Renewal: `pulumi up` issues a fresh certificate, the kubelet swaps it in, tls_auto_reload
    # serves it; no SIGHUP, no restart.
    renewed, renewed_key = rotation.ca.issue(rotation.subject, rotation.sans)
    renewed_der = renewed.public_bytes(serialization.Encoding.DER)
    install(cluster, rotation, renewed, renewed_key)
    renewed_at = time.monotonic()
    wait_until("the renewed certificate served", lambda: serves(cluster, renewed_der),
               timeout=30, interval=0.2, on_timeout=cluster.log_tails)
    served_after = time.monotonic() - renewed_at
    wait_until("readiness passes on every node", lambda: all(
        kubelet.run(n, "readinessProbe").ok for n in cluster.nodes), timeout=15)
    ready_after = time.monotonic() - renewed_at
    writer.wait_for_more(acked_before, timeout=30)
    first = writer.first_accepted_after(renewed_at)
    assert first is not None
    for node in cluster.nodes:
        assert all(r.ok for r in kubelet.all(node).values()), (node.name, kubelet.all(node))
    writer.wait_for_more(writer.count() + 10, timeout=30)
    writer.finish()

    cluster.wait_voters_healthy(token, timeout=60)
    lost = lost_writes(cluster.wait_leader(), token, writer)
    print(f"\nreadiness failing after notAfter: {', '.join(f'{k} {v:+.1f}s' for k, v in first_fail.items())}"
          f" (the kubelet marks NotReady after {kubelet.acts_after('readinessProbe')} s of failures at most);"
          f" old liveness would restart every pod after {kubelet.acts_after('livenessProbe')} s")
    print(f"renewal: served after {served_after:.1f}s, all ready after {ready_after:.1f}s, first acknowledged write "
          f"after {first.at - renewed_at:.1f}s; writes acknowledged {writer.count()} (attempts {writer.attempts}), "
          f"lost {len(lost)}")
    assert lost == [], lost
    for node in cluster.nodes:
        assert node.running() and node.proc.pid == pids[node.name] and node.starts == 1, node.name
        assert served_certificate(node.ip, API_PORT, node.host, cluster.ca_file) == renewed_der


def test_renewal_alert_fires_before_the_certificate_expires(tmp_path: Path) -> None:
    """The prod render's OpenBaoCertificateRenewalDue fires the early-renewal window before the
    rendered certificate's notAfter, and its `for` delay ends long before it too."""
    out = render("prod", tmp_path / "render")
    pki = parse_settings(stack_config("prod"), "prod").pki
    (rule_file,) = (out.root.parent / "manifests").glob("*prometheusrule*.yaml")
    rules = {r["alert"]: r for g in yaml.safe_load(rule_file.read_text())["spec"]["groups"] for r in g["rules"]}
    due = rules["OpenBaoCertificateRenewalDue"]
    match = re.fullmatch(r"(?:vector\(time\(\)\)|time\(\)) > ([0-9]+)", due["expr"])  # fires once now > renew_at
    assert match, due["expr"]
    renew_at = int(match.group(1))
    cert = x509.load_pem_x509_certificate((out.root / "tls" / "tls.crt").read_bytes())
    not_after = int(cert.not_valid_after_utc.timestamp())
    pending = {"m": 60, "h": 3600}[due["for"][-1]] * int(due["for"][:-1])
    assert not_after - renew_at == pki.early_renewal_hours * 3600 > 0
    assert renew_at + pending < not_after - 24 * 3600, "fires less than a day before expiry"
    assert renewal_time(cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ"), pki.early_renewal_hours) == \
        dt.datetime.fromtimestamp(renew_at, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
