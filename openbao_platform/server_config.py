"""Pure functions: a validated cluster spec -> the OpenBao server config (JSON) and the start script.

OpenBao reads JSON config natively, so nothing here builds HCL strings. One gotcha of the
HCL-JSON reader shapes every named block below: a block whose body has exactly one key is
flattened and misread, so named blocks (audit devices, init requests) always carry two or
more keys (proven against bao 2.7.2 in the e2e suite).

The config is the same for every pod; what differs per pod (node id, api/cluster address)
comes from environment variables the StatefulSet sets from the downward API.

Self-initialisation lives in a separate file (``initialize.json``) that only the start
script may add, and only on the designated node when its storage is empty and every peer
answers "not initialised" over verified TLS. That gate is what keeps a fresh or wiped node
from bootstrapping a second cluster (openbao/openbao#2274).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from openbao_platform.declared import ENGINE_PREFIX, OWNERSHIP_PATH, SHARED_PREFIX, TENANT_PREFIX
from openbao_platform.naming import NamedCluster
from openbao_platform.scripts import script
from openbao_platform.settings import (
    AuditSettings,
    ImageSettings,
    ResourceSettings,
    SelfInitSettings,
    StorageSettings,
    TopologySettings,
    UnsealSettings,
)

API_PORT = 8200
CLUSTER_PORT = 8201
KUBERNETES_HOST = "https://kubernetes.default.svc"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


@dataclass(frozen=True)
class ClusterSpec(NamedCluster):
    """Validated OpenBaoCluster args: everything the server config and the manifests consume."""

    name: str
    """Name of the StatefulSet and prefix of every object and DNS name."""
    namespace: str
    cluster_name: str
    """The ``cluster_name`` OpenBao reports."""
    replicas: int = 3
    production: bool = False
    """Required (not preferred) anti-affinity and zone spread, and the production label."""
    tls_min_version: str = "tls12"
    image: ImageSettings = field(default_factory=ImageSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    resources: ResourceSettings = field(default_factory=ResourceSettings)
    topology: TopologySettings = field(default_factory=TopologySettings)
    unseal: UnsealSettings = field(default_factory=UnsealSettings)
    self_init: SelfInitSettings = field(default_factory=SelfInitSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    backup_auth_role: bool = False
    """Self-init creates the ``backup`` kubernetes auth role (bound to ``backup_service_account``)."""
    reconciler_auth_role: bool = False
    """Self-init creates the ``reconciler`` kubernetes auth role (bound to ``reconciler_service_account``)."""
    unauthenticated_metrics: bool = False
    """The listener serves ``/v1/sys/metrics`` without a token."""
    protect: bool = True

    @property
    def init_mounted(self) -> bool:
        """Whether the pods mount the init Secret (the break-glass admin's password file)."""
        return self.self_init.enabled and self.self_init.userpass_admin


@dataclass(frozen=True)
class ConfigPaths:
    """Where each file lives inside the pod. The cluster mounts volumes at these paths."""

    config_dir: str = "/openbao/config"
    tls_dir: str = "/openbao/tls"
    unseal_dir: str = "/openbao/unseal"
    init_dir: str = "/openbao/init"
    data_dir: str = "/openbao/data"
    audit_dir: str = "/openbao/audit"

    @property
    def tls_cert(self) -> str:
        return f"{self.tls_dir}/tls.crt"

    @property
    def tls_key(self) -> str:
        return f"{self.tls_dir}/tls.key"

    @property
    def ca_cert(self) -> str:
        return f"{self.tls_dir}/ca.crt"

    @property
    def server_config(self) -> str:
        return f"{self.config_dir}/{SERVER_CONFIG_FILE}"

    @property
    def initialize_config(self) -> str:
        return f"{self.config_dir}/{INITIALIZE_CONFIG_FILE}"

    @property
    def start_script(self) -> str:
        return f"{self.config_dir}/{START_SCRIPT_FILE}"

    def unseal_key(self, key_id: str) -> str:
        return f"{self.unseal_dir}/{key_id}"


PATHS = ConfigPaths()
SERVER_CONFIG_FILE = "server.json"
INITIALIZE_CONFIG_FILE = "initialize.json"
START_SCRIPT_FILE = "start.sh"
#: How often the listener re-reads cert and key (OpenBao's minimum is 5s).
TLS_RELOAD_INTERVAL = "10s"
ADMIN_PASSWORD_FILE = "admin-password"


def backup_service_account(cluster: NamedCluster) -> str:
    """The ServiceAccount the backup CronJob runs as (bound to the `backup` auth role)."""
    return f"{cluster.name}-backup"


def reconciler_service_account(cluster: NamedCluster) -> str:
    """The ServiceAccount the configuration Job and CronJob run as (bound to the `reconciler` auth role)."""
    return f"{cluster.name}-reconciler"


def listener(spec: ClusterSpec, paths: ConfigPaths = PATHS) -> dict[str, Any]:
    """TLS-only TCP listener. Both cert and key are always set: an empty cert means ACME.

    ``tls_auto_reload`` makes OpenBao re-read a renewed cert/key that the kubelet swaps into
    the Secret volume, with no restart and no SIGHUP sidecar (proven in the e2e suite).
    """
    tcp: dict[str, Any] = {
        "address": f"0.0.0.0:{API_PORT}",
        "cluster_address": f"0.0.0.0:{CLUSTER_PORT}",
        "tls_disable": False,
        "tls_cert_file": paths.tls_cert,
        "tls_key_file": paths.tls_key,
        "tls_client_ca_file": paths.ca_cert,
        "tls_min_version": spec.tls_min_version,
        "tls_auto_reload": True,
        "tls_auto_reload_interval": TLS_RELOAD_INTERVAL,
    }
    if spec.unauthenticated_metrics:
        # Scrapes are restricted by NetworkPolicy to the Prometheus pods instead of a token:
        # a long-lived scrape token would be a standing credential to rotate and leak.
        tcp["telemetry"] = {"unauthenticated_metrics_access": True}
    return {"tcp": tcp}


def retry_join(spec: ClusterSpec, paths: ConfigPaths = PATHS) -> list[dict[str, Any]]:
    """One join target per pod, verified against our CA and the pod's DNS name."""
    return [
        {
            "leader_api_addr": f"https://{spec.pod_dns_name(i)}:{API_PORT}",
            "leader_ca_cert_file": paths.ca_cert,
            "leader_tls_servername": spec.pod_dns_name(i),
        }
        for i in range(spec.replicas)
    ]


def static_seal(spec: ClusterSpec, paths: ConfigPaths = PATHS) -> dict[str, Any]:
    """Static seal reading the key from a mounted file; never inline key material."""
    seal: dict[str, Any] = {
        "current_key_id": spec.unseal.key_id,
        "current_key": f"file://{paths.unseal_key(spec.unseal.key_id)}",
    }
    previous = spec.unseal.previous_key_id
    if previous:
        seal["previous_key_id"] = previous
        seal["previous_key"] = f"file://{paths.unseal_key(previous)}"
    return {"static": seal}


def audit_device_name(kind: str, options: dict[str, str]) -> str:
    """Device path derived from its options: OpenBao refuses to change a declared device's
    options (the node never becomes active), so any change must be a new device name."""
    digest = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:8]
    return f"{kind}-{digest}"


def audit_devices(spec: ClusterSpec, paths: ConfigPaths = PATHS) -> list[dict[str, Any]]:
    """Declarative audit devices (API creation is refused by default in OpenBao)."""
    wanted: list[tuple[str, str, dict[str, str]]] = []
    if spec.audit.file:
        wanted.append(("file", "audit log on its own volume",
                       {"file_path": f"{paths.audit_dir}/audit.log", "mode": "0600"}))
    if spec.audit.stdout:
        wanted.append(("stdout", "audit log to the container log", {"file_path": "stdout"}))
    return [{"file": {audit_device_name(kind, options): {"description": description, "options": options}}}
            for kind, description, options in wanted]


def server_config(spec: ClusterSpec, paths: ConfigPaths = PATHS) -> dict[str, Any]:
    """The config every pod reads. api_addr, cluster_addr and node_id come from env."""
    return {
        "ui": True,
        "log_level": "info",
        "cluster_name": spec.cluster_name,
        "listener": [listener(spec, paths)],
        "storage": {"raft": {
            "path": paths.data_dir,
            "performance_multiplier": 1,
            "retry_join": retry_join(spec, paths),
        }},
        "seal": static_seal(spec, paths),
        "service_registration": {"kubernetes": {"namespace": spec.namespace}},
        "telemetry": {"prometheus_retention_time": "30s", "disable_hostname": True},
        "audit": audit_devices(spec, paths),
    }


def _policy(rules: dict[str, list[str]]) -> str:
    """An ACL policy document; JSON is valid policy syntax, which avoids HCL quoting."""
    return json.dumps({"path": {p: {"capabilities": caps} for p, caps in rules.items()}}, sort_keys=True)


ADMIN_POLICY = _policy({"*": ["create", "read", "update", "patch", "delete", "list", "sudo"]})
#: KV v2 entry (under the self-init KV mount) the backup job writes just before each snapshot; the
#: restore drill reads it back from the restored copy (docs/runbook-backup.md, "Restore drill").
BACKUP_CANARY_PATH = "openbao-platform/backup-canary"


def backup_policy(kv_mount: str) -> str:
    """Read the snapshot, and write (never read or list) the one canary entry: nothing else."""
    return _policy({"sys/storage/raft/snapshot": ["read"],
                    f"{kv_mount}/data/{BACKUP_CANARY_PATH}": ["create", "update"]})


#: KV v2 entry (under the self-init KV mount) where the reconciler records what it owns.
RECONCILER_OWNERSHIP_PATH = OWNERSHIP_PATH


def reconciler_policy(kv_mount: str) -> str:
    """Exactly what reconcile.sh manages: policies tenant-* and shared-*, kubernetes auth roles
    tenant-*, secrets engines under apps/ (enable, read, tune and KV config; never disable:
    no delete on sys/mounts, so no reconcile can destroy a mount's data), and its ownership
    record. Not other mounts, not other policies, not admin/backup."""
    manage = ["create", "read", "update", "delete"]
    keep = ["create", "read", "update"]
    return _policy({
        f"sys/policies/acl/{TENANT_PREFIX}*": manage,
        f"sys/policies/acl/{SHARED_PREFIX}*": manage,
        f"auth/kubernetes/role/{TENANT_PREFIX}*": manage,
        f"sys/mounts/{ENGINE_PREFIX}*": keep,
        f"{ENGINE_PREFIX}+/config": keep,
        f"{kv_mount}/data/{RECONCILER_OWNERSHIP_PATH}": keep,
    })


def _request(name: str, operation: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
    return {name: {"operation": operation, "path": path, "data": data}}


def _from_file(path: str) -> dict[str, str]:
    """Self-init evaluates this to the file's content, so secrets stay out of the config."""
    return {"eval_type": "string", "eval_source": "file", "path": path}


def initialize_config(spec: ClusterSpec, paths: ConfigPaths = PATHS) -> dict[str, Any]:
    """The self-init stanza: what the one bootstrapping node configures. No root token."""
    si = spec.self_init
    blocks: list[dict[str, Any]] = [
        {"autopilot": {"request": [_request(
            "autopilot-config", "update", "sys/storage/raft/autopilot/configuration",
            {"server_stabilization_time": si.autopilot_stabilization, "cleanup_dead_servers": False})]}},
        {"secrets": {"request": [_request(
            "enable-kv", "update", f"sys/mounts/{si.kv_mount}", {"type": "kv", "options": {"version": "2"}})]}},
        {"policies": {"request": [
            _request("policy-admin", "update", "sys/policies/acl/admin", {"policy": ADMIN_POLICY}),
            _request("policy-backup", "update", "sys/policies/acl/backup", {"policy": backup_policy(si.kv_mount)}),
        ] + ([_request("policy-reconciler", "update", "sys/policies/acl/reconciler",
                        {"policy": reconciler_policy(si.kv_mount)})] if spec.reconciler_auth_role else [])}},
    ]
    k8s_requests = [
        _request("enable-kubernetes", "update", "sys/auth/kubernetes", {"type": "kubernetes"}),
        _request("kubernetes-config", "update", "auth/kubernetes/config", {
            "kubernetes_host": KUBERNETES_HOST,
            "kubernetes_ca_cert": _from_file(f"{SA_DIR}/ca.crt"),
        }),
        _request("kubernetes-role-admin", "update", "auth/kubernetes/role/admin", {
            "bound_service_account_names": [si.admin_service_account],
            "bound_service_account_namespaces": [spec.namespace],
            "token_policies": ["admin"],
            "token_ttl": "1h",
            "token_max_ttl": "4h",
        }),
    ]
    if spec.backup_auth_role:
        k8s_requests.append(_request("kubernetes-role-backup", "update", "auth/kubernetes/role/backup", {
            "bound_service_account_names": [backup_service_account(spec)],
            "bound_service_account_namespaces": [spec.namespace],
            "token_policies": ["backup"],
            "token_ttl": "10m",
            "token_max_ttl": "15m",
        }))
    if spec.reconciler_auth_role:
        k8s_requests.append(_request("kubernetes-role-reconciler", "update", "auth/kubernetes/role/reconciler", {
            "bound_service_account_names": [reconciler_service_account(spec)],
            "bound_service_account_namespaces": [spec.namespace],
            "token_policies": ["reconciler"],
            "token_ttl": "10m",
            "token_max_ttl": "15m",
        }))
    blocks.append({"kubernetes": {"request": k8s_requests}})
    if si.userpass_admin:
        blocks.append({"userpass": {"request": [
            _request("enable-userpass", "update", "sys/auth/userpass", {"type": "userpass"}),
            _request("admin-user", "update", f"auth/userpass/users/{si.admin_username}", {
                "password": _from_file(f"{paths.init_dir}/{ADMIN_PASSWORD_FILE}"),
                "token_policies": ["admin"],
                "token_ttl": "1h",
            }),
        ]}})
    return {"initialize": blocks}


def to_json(config: dict[str, Any]) -> str:
    """Stable, reviewable JSON (sorted keys) with a trailing newline."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def self_init_peers(spec: ClusterSpec) -> str:
    """``servername,url`` pairs the start script asks before bootstrapping (all but pod 0)."""
    return " ".join(
        f"{spec.pod_dns_name(i)},https://{spec.pod_dns_name(i)}:{API_PORT}"
        for i in range(1, spec.replicas)
    )


def pod_environment(spec: ClusterSpec, ordinal: int) -> dict[str, str]:
    """The per-pod environment, resolved (the StatefulSet derives it from the downward API)."""
    pod = f"{spec.name}-{ordinal}"
    dns = spec.pod_dns_name(ordinal)
    return {
        "BAO_K8S_POD_NAME": pod,
        "BAO_K8S_NAMESPACE": spec.namespace,
        "BAO_RAFT_NODE_ID": pod,
        "BAO_API_ADDR": f"https://{dns}:{API_PORT}",
        "BAO_CLUSTER_ADDR": f"https://{dns}:{CLUSTER_PORT}",
        **start_environment(spec),
    }


def start_environment(spec: ClusterSpec, paths: ConfigPaths = PATHS) -> dict[str, str]:
    """The start script's inputs that are the same for every pod."""
    return {
        "BAO_CONFIG_DIR": paths.config_dir,
        "BAO_DATA_DIR": paths.data_dir,
        "BAO_SELF_INIT_CACERT": paths.ca_cert,
        "BAO_SELF_INIT_NODE": f"{spec.name}-0" if spec.self_init.enabled else "",
        "BAO_SELF_INIT_PEERS": self_init_peers(spec),
        "BAO_SELF_INIT_PEER_WAIT": str(spec.self_init.peer_wait_seconds),
    }




def start_script() -> str:
    """The POSIX sh entrypoint that gates self-init (openbao_platform/scripts/start.sh)."""
    return script("start.sh")


def config_files(spec: ClusterSpec, paths: ConfigPaths = PATHS) -> dict[str, str]:
    """Every file of the config directory, as the ConfigMap holds them. None is secret."""
    files = {SERVER_CONFIG_FILE: to_json(server_config(spec, paths)), START_SCRIPT_FILE: start_script()}
    if spec.self_init.enabled:
        files[INITIALIZE_CONFIG_FILE] = to_json(initialize_config(spec, paths))
    return files
