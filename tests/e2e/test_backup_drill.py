"""The restore drill (issue 12, point 2) against real OpenBao, real rclone and a real S3 API
(moto_server over TLS on 127.0.23.10, started and stopped here). The three steps of the drill
CronJob's pod run as the pod runs them: remote.sh candidate (rclone image), drill.sh (OpenBao
image: a throwaway `bao server` on loopback with the static seal key) and remote.sh mark, each
with the environment backup.py renders, re-rooted; only the throwaway's loopback address is
moved from 127.0.0.1 to this file's 127.0.23.50 (files run in parallel).

Proves: a scheduled backup writes the canary just before its snapshot; the drill restores the
newest snapshot, checks unsealed, raft index and canary (read as the least-privilege
backup-drill user of the RESTORED data) and marks it good; the restore runbook's fetch takes
only good-marked snapshots; a corrupted object in the bucket is detected and never marked good;
a snapshot whose canary does not match its manifest is never marked good either.

E2E_DRILL_ENTRIES (default 1000) sets the data size; the wall times are printed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from pathlib import Path

from openbao_platform.backup import (DRILL_USERNAME, backup_spec, drill_environment,
                                     remote_environment)
from openbao_platform.platform import backup_args
from openbao_platform.scripts import script
from openbao_platform.server_config import BACKUP_CANARY_PATH
from openbao_platform.settings import parse_settings
from tests.e2e.harness import bao_binary, reroot
from tests.e2e.s3 import MotoS3, remote_settings
from tests.e2e.test_backup_remote import UploadStep
from tests.e2e.test_backup_restore import BackupJob, serving_cluster
from tests.support.program import stack_config

IP_BASE = "127.0.23.11"
S3_IP = "127.0.23.10"
S3_PORT = 9443
DRILL_IP = "127.0.23.50"  # production: 127.0.0.1 of the drill pod
BUCKET = "e2e-openbao-drill"
PREFIX = "e2e/drill"
ENTRIES = int(os.environ.get("E2E_DRILL_ENTRIES", "1000"))
ACCESS_KEY, SECRET_KEY = "e2e-access-key", "e2e-secret-key"
DRILL_PASSWORD = "e2e-drill-" + os.urandom(8).hex()


def _settings():
    stack = os.environ.get("E2E_STACK", "dev")
    raw = stack_config(stack)
    raw["backup"] = {**raw.get("backup", {}), "local": False,
                     "remote": remote_settings(S3_IP, S3_PORT, BUCKET, PREFIX, keep=5),
                     "drill": {"enabled": True, "credentialsSecretName": "e2e-drill"}}
    return parse_settings(raw, stack)


def _good(s3: MotoS3) -> list[str]:
    """The good/ markers in the bucket (``<snapshot>.json``), sorted."""
    return [k.rsplit("/", 1)[1] for k in s3.keys(BUCKET, f"{PREFIX}/good/")]


class DrillPod:
    """The drill CronJob's pod: fetch (remote.sh candidate), drill (drill.sh), mark (remote.sh mark),
    sharing the drill emptyDir; the unseal Secret only in the drill step, the bucket's key only in
    the rclone steps, as rendered."""

    def __init__(self, root: Path, settings, upload: UploadStep, unseal_dir: Path) -> None:
        spec = backup_spec(backup_args(settings, ca_secret_name=settings.ca_bundle_name))
        self.fs = root / "fs"
        self.env = {k: reroot(v, self.fs) for k, v in drill_environment(spec).items()}
        self.env["DRILL_ADDR"] = DRILL_IP
        self.dir = Path(self.env["DRILL_DIR"])
        unseal = Path(self.env["DRILL_UNSEAL_DIR"])
        for d in (self.dir, Path(self.env["DRILL_WORK_DIR"]), unseal, Path(self.env["DRILL_PASSWORD_FILE"]).parent):
            d.mkdir(parents=True, exist_ok=True)
        key_id = self.env["DRILL_KEY_ID"]
        (unseal / key_id).write_bytes((unseal_dir / key_id).read_bytes())  # the unseal Secret's item
        Path(self.env["DRILL_PASSWORD_FILE"]).write_text(DRILL_PASSWORD)  # the drill credentials Secret
        self.env["PATH"] = f"{Path(bao_binary()).parent}:/usr/bin:/bin"
        self.script = self.fs / "scripts" / "drill.sh"
        self.script.parent.mkdir(parents=True, exist_ok=True)
        self.script.write_text(script("drill.sh"))
        self.upload = upload
        assert remote_environment(spec)["BACKUP_REMOTE_PREFIX"] == PREFIX

    def run(self) -> dict[str, subprocess.CompletedProcess]:
        """One Job: a fresh emptyDir; a step runs only when the previous one succeeded (initContainers)."""
        for p in sorted(self.dir.rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        steps: dict[str, subprocess.CompletedProcess] = {}
        steps["fetch"] = self.upload.run("candidate", str(self.dir))
        if steps["fetch"].returncode == 0:
            # cwd: the pod's root, so that the restored audit device's path (the harness keeps it
            # relative, fs/openbao/audit/audit.log) lands in this pod's /openbao/audit volume
            steps["drill"] = subprocess.run(["/bin/sh", str(self.script)], env=self.env, capture_output=True,
                                            text=True, timeout=600, cwd=self.fs.parent)
            if steps["drill"].returncode == 0:
                steps["mark"] = self.upload.run("mark", str(self.dir))
        return steps


def _ok(steps: dict[str, subprocess.CompletedProcess]) -> str:
    assert set(steps) == {"fetch", "drill", "mark"}, {k: v.stderr[-1500:] for k, v in steps.items()}
    for name, done in steps.items():
        assert done.returncode == 0, f"{name}: {done.stderr[-3000:]}"
    return "".join(s.stderr for s in steps.values())


def test_restore_drill_marks_good_and_never_a_corrupt_snapshot(make_cluster, tmp_path):
    settings = _settings()
    with MotoS3(tmp_path / "s3", S3_IP, S3_PORT, ACCESS_KEY, SECRET_KEY) as s3:
        _run(make_cluster, tmp_path, settings, s3)


def _run(make_cluster, tmp_path, settings, s3: MotoS3) -> None:
    s3.client().create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    cluster, token, leader = serving_cluster(make_cluster, IP_BASE)
    kv = settings.self_init.kv_mount
    # docs/runbook-backup.md "Restore drill", step 1: the drill user, whose policy reads the canary only
    policy = {"path": {f"{kv}/data/{BACKUP_CANARY_PATH}": {"capabilities": ["read"]}}}
    assert leader.request("PUT", "sys/policies/acl/backup-drill", {"policy": json.dumps(policy)},
                          token=token).status == 204
    assert leader.request("POST", f"auth/userpass/users/{DRILL_USERNAME}",
                          {"password": DRILL_PASSWORD, "token_policies": ["backup-drill"], "token_ttl": "10m"},
                          token=token).status == 204
    for i in range(ENTRIES):
        assert leader.request("POST", f"{kv}/data/e2e/drill/{i:05d}", {"data": {"i": str(i)}},
                              token=token).status == 200

    job = BackupJob(tmp_path / "backup-job", settings)
    assert job.env["BACKUP_CANARY_PATH"] == f"{kv}/data/{BACKUP_CANARY_PATH}"
    upload = UploadStep(tmp_path / "upload", settings, job.dir, s3.ca_file)
    unseal_dir = cluster.nodes[0].path("/openbao/unseal")
    pod = DrillPod(tmp_path / "drill-pod", settings, upload, unseal_dir)

    def backup() -> str:
        for p in job.dir.iterdir():
            p.unlink()
        taken = job.run(cluster)
        assert taken.returncode == 0, taken.stderr
        [snap] = job.snapshots()
        up = upload.run("upload")
        assert up.returncode == 0, up.stderr
        time.sleep(1.1)  # snapshot names have 1 s resolution
        return snap.name

    # --- a scheduled backup: the canary is written just before the snapshot, its nonce in the manifest
    name1 = backup()
    manifest1 = json.loads(s3.get(BUCKET, f"{PREFIX}/snapshots/{name1}.json"))
    assert len(manifest1["canary_nonce"]) == 32, manifest1
    live = leader.request("GET", f"{kv}/data/{BACKUP_CANARY_PATH}", token=token).body["data"]["data"]
    assert live == {"nonce": manifest1["canary_nonce"], "snapshot": name1}, live
    assert _good(s3) == []
    # the runbook's fetch takes only drilled snapshots (the override is for emergencies)
    none_yet = upload.run("fetch", str(tmp_path / "restore-none"))
    assert none_yet.returncode != 0 and "marked good by a restore drill" in none_yet.stderr, none_yet.stderr

    # --- the drill: restores, checks, marks good
    started = time.monotonic()
    out = _ok(pod.run())
    drill_s = time.monotonic() - started
    assert f"marked {name1} good" in out, out
    assert _good(s3) == [f"{name1}.json"]
    verdict = json.loads(s3.get(BUCKET, f"{PREFIX}/good/{name1}.json"))
    body1 = s3.get(BUCKET, f"{PREFIX}/snapshots/{name1}")
    assert verdict["sha256"] == hashlib.sha256(body1).hexdigest() == manifest1["sha256"], verdict
    assert verdict["result"] == "good" and verdict["canary_nonce"] == manifest1["canary_nonce"], verdict
    assert verdict["restored_raft_index"] >= manifest1["raft_index"] > ENTRIES, verdict
    # the restored data's file audit device opened its file in the pod's /openbao/audit volume
    # (without it 2.7.2 logs "sanity check failed; unable to open ..." and goes on without it)
    assert (pod.fs / "openbao" / "audit" / "audit.log").exists()
    assert "unable to open" not in (Path(pod.env["DRILL_WORK_DIR"]) / "bao.log").read_text()
    # the next run has nothing to do: the newest snapshot is already good
    again = pod.run()
    assert all(s.returncode == 0 for s in again.values()), {k: v.stderr for k, v in again.items()}
    assert "already marked good" in again["fetch"].stderr and _good(s3) == [f"{name1}.json"]

    # --- a corrupted object in the bucket: detected, never drilled, never marked good
    name2 = backup()
    body2 = s3.get(BUCKET, f"{PREFIX}/snapshots/{name2}")
    s3.client().put_object(Bucket=BUCKET, Key=f"{PREFIX}/snapshots/{name2}", Body=body2[:-64] + bytes(64))
    corrupt = pod.run()
    assert corrupt["fetch"].returncode != 0 and set(corrupt) == {"fetch"}, corrupt
    assert f"CORRUPT {name2} in bucket {BUCKET}" in corrupt["fetch"].stderr, corrupt["fetch"].stderr
    assert _good(s3) == [f"{name1}.json"]
    fetched = upload.run("fetch", str(tmp_path / "restore"))
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == str(tmp_path / "restore" / name1), fetched.stderr  # the good one

    # --- a snapshot whose canary is not the manifest's: the drill fails, nothing is marked
    name3 = backup()
    manifest_key = f"{PREFIX}/snapshots/{name3}.json"
    forged = json.loads(s3.get(BUCKET, manifest_key))
    forged["canary_nonce"] = "0" * 32
    s3.client().put_object(Bucket=BUCKET, Key=manifest_key, Body=(json.dumps(forged) + "\n").encode())
    wrong = pod.run()
    assert wrong["fetch"].returncode == 0 and wrong["drill"].returncode != 0 and "mark" not in wrong, wrong
    assert "canary nonce" in wrong["drill"].stderr, wrong["drill"].stderr
    assert not (pod.dir / "verdict.json").exists()
    assert _good(s3) == [f"{name1}.json"]

    # --- a new good snapshot after those: drilled and marked, the fetch now takes it
    name4 = backup()
    _ok(pod.run())
    assert _good(s3) == [f"{name1}.json", f"{name4}.json"]
    latest = upload.run("fetch", str(tmp_path / "restore-latest"))
    assert latest.returncode == 0 and latest.stdout.strip().endswith(name4), latest.stderr
    print(f"\nrestore drill: {ENTRIES} entries, snapshot {len(body1)} bytes, drill (fetch + throwaway node + "
          f"restore + checks + mark) {drill_s:.1f}s (in drill.sh: {verdict['drill_seconds']}s, restore to "
          f"canary read {verdict['restore_seconds']}s)")
