"""OpenBaoBackup: scheduled, verified Raft snapshots to their own volume.

OpenBao has no built-in snapshot schedule, so this ships one: a CronJob that logs in with
the ``backup`` kubernetes auth role self-init created (read on sys/storage/raft/snapshot,
nothing else) using a short-lived projected ServiceAccount token, saves a timestamped
snapshot, verifies its checksums and keeps the newest N (components/scripts/backup.sh).
The pod never mounts the Kubernetes API token and runs under Pod Security "restricted".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components import cluster_manifests as cm
from components.k8s_args import typed_kwargs
from components.lifecycle import stateful
from components.scripts import script
from components.server_config import API_PORT, backup_service_account
from components.settings import Settings

Obj = dict[str, Any]

BACKUP_DIR = "/backup"
TOKEN_DIR = "/var/run/secrets/openbao"
CA_DIR = "/openbao/ca"
#: OpenBao's kubernetes auth accepts the token within its lifetime; 10 minutes covers a run.
TOKEN_SECONDS = 600


def backup_labels(settings: Settings) -> dict[str, str]:
    """Pod labels the backup NetworkPolicy selects."""
    return {"app.kubernetes.io/name": "openbao-backup", "app.kubernetes.io/instance": settings.name}


def backup_name(settings: Settings) -> str:
    return f"{settings.name}-backup"


def backup_environment(settings: Settings) -> dict[str, str]:
    """The script's inputs; the e2e suite runs the same script with the same variables."""
    return {
        "BAO_ADDR": f"https://{settings.active_dns_name}:{API_PORT}",
        "BAO_CACERT": f"{CA_DIR}/ca.crt",
        "BACKUP_DIR": BACKUP_DIR,
        "BACKUP_KEEP": str(settings.backup.keep),
        "BACKUP_ROLE": "backup",
        "BACKUP_JWT_FILE": f"{TOKEN_DIR}/token",
        "HOME": "/tmp",
    }


def script_config_map(settings: Settings) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": cm.metadata(settings, f"{backup_name(settings)}-script"),
            "data": {"backup.sh": script("backup.sh")}}


def volume_claim(settings: Settings) -> Obj:
    spec: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": settings.backup.size}}}
    if settings.storage.class_name:
        spec["storageClassName"] = settings.storage.class_name
    return {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": cm.metadata(settings, backup_name(settings)), "spec": spec}


def cron_job(settings: Settings, ca_secret: str) -> Obj:
    """Forbid overlap, give up on a run that could not start within 10 minutes, keep history."""
    container = {
        "name": "backup",
        "image": settings.image.reference,
        "imagePullPolicy": settings.image.pull_policy,
        "command": ["/bin/sh", "/scripts/backup.sh"],
        "env": [{"name": k, "value": v} for k, v in backup_environment(settings).items()],
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
        "metadata": {"labels": {**settings.common_labels, **backup_labels(settings)}},
        "spec": {
            "serviceAccountName": backup_service_account(settings),
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "restartPolicy": "Never",
            "securityContext": cm.pod_security_context(),
            "containers": [container],
            "volumes": [
                {"name": "script", "configMap": {"name": f"{backup_name(settings)}-script", "defaultMode": 0o444}},
                {"name": "ca", "secret": {"secretName": ca_secret, "defaultMode": 0o444}},
                {"name": "token", "projected": {"defaultMode": 0o440, "sources": [{"serviceAccountToken": {
                    "path": "token", "expirationSeconds": TOKEN_SECONDS}}]}},
                {"name": "backup", "persistentVolumeClaim": {"claimName": backup_name(settings)}},
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            ],
        },
    }
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": cm.metadata(settings, backup_name(settings),
                                annotations=cm.waiver_annotations(cm.image_waivers(settings))),
        "spec": {
            "schedule": settings.backup.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": backup_labels(settings)},
                            "spec": {"backoffLimit": 2, "activeDeadlineSeconds": 1800,
                                     "ttlSecondsAfterFinished": 86400, "template": pod}},
        },
    }


@dataclass(frozen=True)
class OpenBaoBackupArgs:
    """Inputs of OpenBaoBackup: settings and the CA-only Secret the job verifies TLS with."""

    settings: Settings
    ca_secret_name: pulumi.Input[str]


class OpenBaoBackup(pulumi.ComponentResource):
    """ServiceAccount, script, volume and CronJob for scheduled snapshots."""

    cron_job_name: pulumi.Output[str]
    """The CronJob (trigger a run now: kubectl create job --from=cronjob/<name> ...)."""
    claim_name: str
    """The PersistentVolumeClaim holding the snapshots."""

    def __init__(self, name: str, args: OpenBaoBackupArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("openbao:backup:OpenBaoBackup", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa", **typed_kwargs(cm.service_account(s, backup_service_account(s), False)), opts=child)
        script_cm = k8s.core.v1.ConfigMap(f"{name}-script", **typed_kwargs(script_config_map(s)), opts=child)
        # The snapshots: kept when the stack goes (retain), never replaced or deleted by a diff.
        pvc = k8s.core.v1.PersistentVolumeClaim(
            f"{name}-pvc", **typed_kwargs(volume_claim(s)),
            opts=stateful(self, s.protect, retain=True))
        job_obj = cron_job(s, "")
        job = k8s.batch.v1.CronJob(
            f"{name}-cronjob",
            metadata=job_obj["metadata"],
            spec=pulumi.Output.from_input(args.ca_secret_name).apply(lambda ca: cron_job(s, ca)["spec"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[sa, script_cm, pvc]),
        )
        self.cron_job_name = job.metadata.name
        self.claim_name = backup_name(s)
        self.register_outputs({"cron_job_name": self.cron_job_name, "claim_name": self.claim_name})
