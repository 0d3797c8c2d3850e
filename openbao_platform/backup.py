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
from openbao_platform.settings import ArgsCheck, BackupSettings, ImageSettings
from openbao_platform.image import IMAGE_KEYS, ImageArgs
from openbao_platform.tokens import token, with_previous_token

Obj = dict[str, Any]

BACKUP_DIR = "/backup"
TOKEN_DIR = "/var/run/secrets/openbao"
CA_DIR = "/openbao/ca"
#: OpenBao's kubernetes auth accepts the token within its lifetime; 10 minutes covers a run.
TOKEN_SECONDS = 600


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
        backup = check.section("backup", {k: args.get(k) for k in ("schedule", "keep", "size")})
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
        "BACKUP_KEEP": str(spec.backup.keep),
        "BACKUP_ROLE": "backup",
        "BACKUP_JWT_FILE": f"{TOKEN_DIR}/token",
        "HOME": "/tmp",
    }


def script_config_map(spec: BackupSpec) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": cm.metadata(spec, f"{backup_name(spec)}-script"),
            "data": {"backup.sh": script("backup.sh")}}


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
    pod = {
        "metadata": {"labels": {**spec.common_labels, **backup_labels(spec)}},
        "spec": {
            "serviceAccountName": backup_service_account(spec),
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "restartPolicy": "Never",
            "securityContext": cm.pod_security_context(),
            "containers": [container],
            "volumes": [
                {"name": "script", "configMap": {"name": f"{backup_name(spec)}-script", "defaultMode": 0o444}},
                {"name": "ca", "secret": {"secretName": ca_secret, "defaultMode": 0o444}},
                {"name": "token", "projected": {"defaultMode": 0o440, "sources": [{"serviceAccountToken": {
                    "path": "token", "expirationSeconds": TOKEN_SECONDS}}]}},
                {"name": "backup", "persistentVolumeClaim": {"claimName": backup_name(spec)}},
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            ],
        },
    }
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
    """The PersistentVolumeClaim holding the snapshots."""

    def __init__(self, name: str, args: OpenBaoBackupArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        spec = backup_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("OpenBaoBackup"), name, None, with_previous_token(opts, "openbao:backup:OpenBaoBackup"))
        child = pulumi.ResourceOptions(parent=self)
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa", **typed_kwargs(cm.service_account(spec, backup_service_account(spec), False)), opts=child)
        script_cm = k8s.core.v1.ConfigMap(f"{name}-script", **typed_kwargs(script_config_map(spec)), opts=child)
        # The snapshots: kept when the stack goes (retain), never replaced or deleted by a diff.
        pvc = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-pvc", **typed_kwargs(volume_claim(spec)),
            opts=stateful(self, spec.protect, retain=True))
        job_obj = cron_job(spec, "")
        job = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=job_obj["metadata"],
            spec=pulumi.Output.from_input(args["ca_secret_name"]).apply(lambda ca: cron_job(spec, ca)["spec"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[sa, script_cm, pvc]),
        )
        self.cron_job_name = job.metadata.name
        self.claim_name = pvc.metadata.name
        self.register_outputs({"cron_job_name": self.cron_job_name, "claim_name": self.claim_name})
