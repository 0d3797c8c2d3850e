"""Scheduled backup and restore against real OpenBao: the real openbao_platform/scripts/backup.sh with
the CronJob's environment (openbao_platform.backup.backup_environment, paths re-rooted, the active
Service name pinned to the leader's loopback address) logs in through the kubernetes auth
role `backup` (TokenReview answered by the fake Kubernetes API), saves and verifies a snapshot
and keeps the newest N; then docs/runbook-restore.md step by step into a fresh cluster."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any, Callable, NamedTuple

from openbao_platform.backup import TOKEN_SECONDS, backup_environment, backup_spec
from openbao_platform.platform import backup_args
from openbao_platform.scripts import script
from openbao_platform.server_config import backup_service_account
from openbao_platform.settings import parse_settings
from tests.e2e.harness import (FAKE_KUBE_NEEDS, KUBE_API_PORT, BaoCluster, BaoNode, audit_file_path, bao_binary,
                               bao_cli, map_url, reroot, rewrite_hosts, wait_until)
from tests.support.program import stack_config

IP_BASE = "127.0.17.11"  # this file's loopback ranges: files run in parallel
RESTORE_IP_BASE = "127.0.17.31"
ENTRIES = 200
KUBERNETES_HOST = "https://kubernetes.default.svc"


def _settings():
    stack = os.environ.get("E2E_STACK", "dev")
    return parse_settings(stack_config(stack), stack)


def _fake_kube(cluster: BaoCluster) -> None:
    """kubernetes auth talks to the fake API: https://kubernetes.default.svc -> its address."""
    assert cluster.kube_api is not None, FAKE_KUBE_NEEDS
    map_url(cluster, KUBERNETES_HOST, f"https://{cluster.kube_api_ip}:{KUBE_API_PORT}")


def serving_cluster(make_cluster: Callable[..., BaoCluster], ip_base: str) -> tuple[BaoCluster, str, BaoNode]:
    """The backup tests' cluster on ``ip_base`` (kubernetes auth on the fake API, for the backup
    role): every node started and unsealed, the admin logged in. Returns (cluster, token, leader);
    unlike start_healthy it does not wait for autopilot to call every voter healthy."""
    cluster = make_cluster(ip_base=ip_base)
    _fake_kube(cluster)
    cluster.start()
    cluster.wait_unsealed(timeout=120)
    token = cluster.login_userpass()
    return cluster, token, cluster.wait_leader()


class BackupJob:
    """The CronJob's pod, on the loopback: its volumes re-rooted under ``root``."""

    def __init__(self, root: Path, settings) -> None:
        self.settings = settings
        self.fs = root / "fs"
        spec = backup_spec(backup_args(settings, ca_secret_name=settings.ca_bundle_name))
        self.env = {k: reroot(v, self.fs) for k, v in backup_environment(spec).items()}
        self.dir = Path(self.env["BACKUP_DIR"])
        self.jwt_file = Path(self.env["BACKUP_JWT_FILE"])
        self.script = self.fs / "scripts" / "backup.sh"
        for d in (self.dir, self.jwt_file.parent, Path(self.env["BAO_CACERT"]).parent, Path(self.env["HOME"]),
                  self.script.parent):
            d.mkdir(parents=True, exist_ok=True)
        self.script.write_text(script("backup.sh"))  # what the ConfigMap mounts

    def run(self, cluster: BaoCluster, keep: int | None = None) -> subprocess.CompletedProcess:
        """One Job run: a fresh projected token, the active Service = the current leader."""
        leader = cluster.wait_leader()
        active = self.settings.active_dns_name
        self.jwt_file.write_text(cluster.kube_api.issue_token(backup_service_account(self.settings),
                                                                    ttl=TOKEN_SECONDS))
        Path(self.env["BAO_CACERT"]).write_bytes(Path(cluster.ca_file).read_bytes())
        env = dict(self.env)
        env["BAO_ADDR"] = rewrite_hosts(env["BAO_ADDR"], {active: leader.ip})
        env["BAO_TLS_SERVER_NAME"] = active  # what DNS + the Service would give
        env["PATH"] = f"{Path(bao_binary()).parent}:/usr/bin:/bin"
        if keep is not None:
            env["BACKUP_KEEP"] = str(keep)
        return subprocess.run(["/bin/sh", str(self.script)], env=env, capture_output=True, text=True, timeout=120)

    def snapshots(self) -> list[Path]:
        return sorted(self.dir.glob("openbao-*.snap"))

    def leftovers(self) -> list[str]:
        return sorted(p.name for p in self.dir.iterdir() if p.name.startswith("."))


def _verify_snapshot(path: Path) -> None:
    """A Raft snapshot: a gzipped tar whose SHA256SUMS covers meta.json and state.bin."""
    with tarfile.open(path, "r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}
    assert {"meta.json", "state.bin", "SHA256SUMS"} <= set(files), sorted(files)
    sums = dict(reversed(line.split()) for line in files["SHA256SUMS"].decode().splitlines() if line.strip())
    assert {"meta.json", "state.bin"} <= set(sums), sums
    for name, digest in sums.items():
        assert hashlib.sha256(files[name]).hexdigest() == digest, name


def wait_until_or_none(check, timeout: float):
    """``check()`` became true within ``timeout`` s (True) or not (False): an observation, no assert."""
    try:
        return bool(wait_until("observation", check, timeout))
    except TimeoutError:
        return False


def restore_snapshot(cluster: BaoCluster, leader: BaoNode, snapshot: Path, token: str, server_name: str,
                     served: Callable[[], Any]) -> float:
    """docs/runbook-restore.md, restore and wait: the snapshot restored through the active node
    ``leader`` with an admin ``token`` (-force: it may hold another cluster's keyring), then
    ``served()`` polled until the active node serves it. The CLI returns as soon as the snapshot
    is uploaded; the node applies it afterwards (~5 s: its barrier is re-keyed, requests stall),
    and a standby restarted before that can fail for good ("decryption failed"). Returns the
    seconds from the CLI's return until served."""
    restore = bao_cli(leader, "operator", "raft", "snapshot", "restore", "-force", str(snapshot),
                      token=token, server_name=server_name)
    assert restore.returncode == 0, restore.stderr
    restored_at = time.monotonic()
    wait_until("the active node serving the restored snapshot", served, timeout=90, interval=0.5,
               on_timeout=cluster.log_tails)
    return time.monotonic() - restored_at


class Restarted(NamedTuple):
    """What restart_after_restore saw before it restarted the formerly active pod."""

    cut_off: bool | None  # it had lost leadership to a restarted standby (None: not watched)
    refused: bool  # a node logged "tls: unrecognized name": its old Raft TLS identity refused


def restart_after_restore(cluster: BaoCluster, formerly_active: BaoNode, standbys: list[BaoNode] | None = None,
                          cut_off_within: float = 0) -> Restarted:
    """docs/runbook-restore.md, restart every pod: the standbys (default: every other node, in
    order) one at a time until unsealed, THEN the formerly active one. Standbys answer 500 until
    they restart; the formerly active node still speaks the pre-restore Raft TLS identity, which
    the restarted standbys (the snapshot's identity) refuse. With ``cut_off_within`` > 0, watch
    that long for it being cut off first."""
    standbys = [n for n in cluster.nodes if n is not formerly_active] if standbys is None else standbys
    for node in standbys:
        node.stop()
        node.start()
        cluster.wait_unsealed([node], timeout=90)
    cut_off = None
    if cut_off_within > 0:
        cut_off = wait_until_or_none(lambda: not formerly_active.is_active() and any(n.is_active() for n in standbys),
                                     cut_off_within)
    refused = any("tls: unrecognized name" in n.log_text() for n in cluster.nodes)
    formerly_active.stop()
    formerly_active.start()
    cluster.wait_unsealed([formerly_active], timeout=90)
    return Restarted(cut_off, refused)


def _login_backup(node: BaoNode, jwt: str):
    return node.request("POST", "auth/kubernetes/login", {"role": "backup", "jwt": jwt})


def _audit_paths(node: BaoNode, audit_prod: str) -> list[str]:
    path = node.path(audit_prod)
    if not path.exists():
        return []
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    return [json.loads(line).get("request", {}).get("path", "") for line in lines]



def test_backup_job_and_restore_runbook(make_cluster, tmp_path):
    started = time.monotonic()
    settings = _settings()
    assert settings.backup.enabled, "the stack under test must ship the backup CronJob"
    cluster, token, leader = serving_cluster(make_cluster, IP_BASE)

    # the original cluster's admin password is no longer the render's: a restore must bring it
    original_password = "e2e-original-" + os.urandom(6).hex()
    resp = leader.request("POST", "auth/userpass/users/admin/password", {"password": original_password}, token=token)
    assert resp.status == 204, resp.body
    token = cluster.login_userpass(password=original_password)
    for i in range(ENTRIES):
        resp = leader.request("POST", f"secret/data/e2e/backup/{i:03d}", {"data": {"i": str(i)}}, token=token)
        assert resp.status == 200, resp.body

    # --- the backup role is least privilege, and bound to its ServiceAccount
    kube = cluster.kube_api
    backup_sa = backup_service_account(settings)
    login = _login_backup(leader, kube.issue_token(backup_sa))
    assert login.status == 200, login.body
    assert sorted(login.body["auth"]["policies"]) == ["backup", "default"], login.body["auth"]
    btoken = login.body["auth"]["client_token"]
    caps = leader.request("POST", "sys/capabilities-self",
                          {"paths": ["sys/storage/raft/snapshot", "secret/data/e2e/backup/000"]}, token=btoken)
    assert caps.status == 200, caps.body
    assert caps.body["sys/storage/raft/snapshot"] == ["read"], caps.body
    assert caps.body["secret/data/e2e/backup/000"] == ["deny"], caps.body
    assert leader.request("GET", "secret/data/e2e/backup/000", token=btoken).status == 403
    assert leader.request("GET", "secret/metadata/e2e/backup?list=true", token=btoken).status == 403
    assert leader.request("POST", "sys/storage/raft/snapshot", {}, token=btoken).status == 403  # no restore
    assert leader.request("GET", "sys/policies/acl/admin", token=btoken).status == 403
    assert leader.request("POST", "auth/token/revoke-self", token=btoken).status == 204
    # another ServiceAccount, another namespace, a token the API server does not know: refused
    assert _login_backup(leader, kube.issue_token("default")).status == 403
    assert _login_backup(leader, kube.issue_token(backup_sa, namespace="elsewhere")).status == 403
    unknown = kube.issue_token(backup_sa)
    with kube.lock:
        kube.issued.pop(unknown)  # e.g. the ServiceAccount was deleted
    refused = _login_backup(leader, unknown)
    assert refused.status == 403, refused.body
    assert unknown in kube.reviews  # TokenReview was asked, not just the JWT claims read

    # --- the real backup script, as the CronJob runs it
    job = BackupJob(tmp_path / "backup-job", settings)
    first = job.run(cluster)
    assert first.returncode == 0, first.stderr
    snaps = job.snapshots()
    assert len(snaps) == 1 and job.leftovers() == [], (snaps, job.leftovers(), first.stderr)
    assert f"saved {snaps[0].name}" in first.stderr, first.stderr
    _verify_snapshot(snaps[0])
    audit_prod = audit_file_path(cluster.rendered.server)
    wait_until("the job's token revoked (audit log)",
               lambda: "auth/token/revoke-self" in _audit_paths(cluster.wait_leader(), audit_prod)[-50:], timeout=15)
    # retention: another run with BACKUP_KEEP=1 keeps only the newest (names have 1 s resolution)
    while time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) in snaps[0].name:
        time.sleep(0.2)
    second = job.run(cluster, keep=1)
    assert second.returncode == 0, second.stderr
    kept = job.snapshots()
    assert len(kept) == 1 and kept[0].name > snaps[0].name and job.leftovers() == [], (kept, second.stderr)
    assert f"removed {snaps[0].name}" in second.stderr, second.stderr
    _verify_snapshot(kept[0])
    snapshot = kept[0]
    original_sa_ca = (cluster.workdir / "kube" / "serviceaccount" / "ca.crt").read_text()
    original_cluster_id = leader.health()["cluster_id"]

    # the original cluster is gone (disaster): only the snapshot file survives
    cluster.close()
    backed_up_s = time.monotonic() - started

    # --- docs/runbook-restore.md, into a fresh cluster of the same stack (same unseal key)
    # 1. a running, unsealed cluster; log in with its own admin password (the render's)
    fresh = make_cluster(ip_base=RESTORE_IP_BASE)
    _fake_kube(fresh)
    fresh_token = fresh.start_healthy()
    fresh_leader = fresh.wait_leader()
    assert fresh_leader.health()["cluster_id"] != original_cluster_id
    assert fresh_leader.request("GET", "secret/data/e2e/backup/000", token=fresh_token).status == 404
    # 2. same unseal key: nothing to do. 3. the snapshot is next to the CLI.
    # 4. restore through the active node with an admin token (-force: another cluster's keyring),
    # then wait until the active node serves the snapshot: the snapshot's admin password works
    def snapshot_served() -> bool:
        return fresh_leader.request("POST", "auth/userpass/login/admin", {"password": original_password}).status == 200

    applied_s = restore_snapshot(fresh, fresh_leader, snapshot, fresh_token, settings.active_dns_name, snapshot_served)
    assert fresh_leader.is_active()
    standbys = [n for n in fresh.nodes if n is not fresh_leader]

    # 5. restart the standbys (the pods labelled openbao-active=false, one at a time until
    # Ready), THEN the pod that was active (restart_after_restore says why)
    labelled = sorted(n.name for n in fresh.nodes if fresh.kube_api.labels(n.name).get("openbao-active") == "false")
    assert labelled == sorted(n.name for n in standbys), labelled
    restarted = restart_after_restore(fresh, fresh_leader, [fresh.node(name) for name in labelled], cut_off_within=30)

    # 6. log in again: pre-restore tokens are gone; the admin password is the snapshot's
    assert fresh.wait_leader().request("GET", "sys/auth", token=fresh_token).status == 403
    assert fresh.wait_leader().request("POST", "auth/userpass/login/admin",
                                       {"password": fresh.rendered.admin_password()}).status == 400
    token = fresh.login_userpass(password=original_password)
    leader = fresh.wait_leader()
    listed = bao_cli(leader, "kv", "list", "-format=json", "secret/e2e/backup/", token=token,
                     server_name=settings.active_dns_name)
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout) == [f"{i:03d}" for i in range(ENTRIES)]
    for i in range(ENTRIES):
        got = leader.request("GET", f"secret/data/e2e/backup/{i:03d}", token=token)
        assert got.status == 200 and got.body["data"]["data"] == {"i": str(i)}, (i, got.status, got.body)
    for node in fresh.nodes:  # every node serves reads again
        got = node.request("GET", f"secret/data/e2e/backup/{ENTRIES - 1:03d}", token=token)
        assert got.status == 200, (node.name, got.status, got.body)
    peers = bao_cli(leader, "operator", "raft", "list-peers", "-format=json", token=token,
                    server_name=settings.active_dns_name)
    assert peers.returncode == 0, peers.stderr
    servers = json.loads(peers.stdout)["data"]["config"]["servers"]
    assert sorted(s["node_id"] for s in servers) == sorted(n.name for n in fresh.nodes)
    assert all(s["voter"] for s in servers), servers
    fresh.wait_voters_healthy(token, timeout=90)

    # The restored kubernetes auth config is the snapshot's: its CA is the ORIGINAL cluster's
    # Kubernetes CA (self-init stored the file's content). Same Kubernetes cluster: same CA.
    kconfig = leader.request("GET", "auth/kubernetes/config", token=token)
    assert kconfig.status == 200, kconfig.body
    assert kconfig.body["data"]["kubernetes_ca_cert"].strip() == original_sa_ca.strip()
    fresh_sa_ca = (fresh.workdir / "kube" / "serviceaccount" / "ca.crt").read_text()
    assert fresh_sa_ca.strip() != original_sa_ca.strip()
    # Another Kubernetes cluster: point the auth method at it, then the CronJob works again
    rewrite = leader.request("POST", "auth/kubernetes/config", {
        "kubernetes_host": f"https://{fresh.kube_api_ip}:{KUBE_API_PORT}",  # = https://kubernetes.default.svc
        "kubernetes_ca_cert": fresh_sa_ca}, token=token)
    assert rewrite.status == 204, rewrite.body
    job_after = BackupJob(tmp_path / "backup-job-after", settings)
    after = job_after.run(fresh)
    assert after.returncode == 0 and len(job_after.snapshots()) == 1, after.stderr

    print(f"\nbackup: {ENTRIES} entries, 2 verified runs (keep=1) in {backed_up_s:.1f}s; "
          f"restore applied {applied_s:.1f}s after the CLI returned; "
          f"after the standbys restarted, the former leader was cut off: {restarted.cut_off} "
          f"(tls: unrecognized name: {restarted.refused}); "
          f"total {time.monotonic() - started:.1f}s")
