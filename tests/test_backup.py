"""OpenBaoBackup: the CronJob, its identity, volume and least privilege."""

from __future__ import annotations

from typing import Any

from openbao_platform.backup import backup_environment, backup_spec
from openbao_platform.platform import backup_args
from openbao_platform.settings import parse_settings
from tests.support.program import ProgramRun, run_program, stack_config


def job_pod(run: ProgramRun) -> dict[str, Any]:
    return run.object("CronJob", "openbao-backup")["spec"]["jobTemplate"]["spec"]["template"]


def test_cronjob_schedule_and_concurrency(prod_run: ProgramRun) -> None:
    spec = prod_run.object("CronJob", "openbao-backup")["spec"]
    assert spec["schedule"] == "0 */6 * * *"
    assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] > 0
    env = {e["name"]: e["value"] for e in job_pod(prod_run)["spec"]["containers"][0]["env"]}
    assert env["BACKUP_KEEP"] == "28" and env["BAO_ADDR"] == "https://openbao-active.openbao.svc:8200"
    assert env["BAO_CACERT"] == "/openbao/ca/ca.crt"


def test_identity_is_a_projected_token_not_the_api_token(prod_run: ProgramRun) -> None:
    pod = job_pod(prod_run)["spec"]
    assert pod["serviceAccountName"] == "openbao-backup" and pod["automountServiceAccountToken"] is False
    assert prod_run.object("ServiceAccount", "openbao-backup")["automountServiceAccountToken"] is False
    (token,) = [v for v in pod["volumes"] if v["name"] == "token"]
    src = token["projected"]["sources"][0]["serviceAccountToken"]
    assert src["expirationSeconds"] <= 3600


def test_only_the_ca_is_mounted_not_server_keys(prod_run: ProgramRun) -> None:
    vols = {v["name"]: v for v in job_pod(prod_run)["spec"]["volumes"]}
    assert vols["ca"]["secret"]["secretName"] == "openbao-ca"
    assert not any(v.get("secret", {}).get("secretName") in ("openbao-tls", "openbao-unseal") for v in vols.values())


def test_pod_security_restricted(prod_run: ProgramRun) -> None:
    pod = job_pod(prod_run)["spec"]
    (c,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert c["resources"]["limits"]["memory"] and c["resources"]["requests"]["cpu"]
    assert job_pod(prod_run)["metadata"]["labels"]["app.kubernetes.io/name"] == "openbao-backup"


def test_volume_and_script(prod_run: ProgramRun) -> None:
    pvc = prod_run.object("PersistentVolumeClaim", "openbao-backup")["spec"]
    assert pvc["resources"]["requests"]["storage"] == "50Gi" and pvc["storageClassName"] == "fast-ssd"
    script = prod_run.object("ConfigMap", "openbao-backup-script")["data"]["backup.sh"]
    assert "operator raft snapshot save" in script and "sha256sum -c" in script


def test_backup_disabled_creates_nothing() -> None:
    raw = {**stack_config("dev"), "backup": {"enabled": False}}
    run = run_program("dev", raw)
    assert not [r for r in run.registrations if "backup" in r.name]


def test_environment_follows_settings() -> None:
    s = parse_settings({"namespace": "vault", "backup": {"keep": 3}}, "t")
    env = backup_environment(backup_spec(backup_args(s, ca_secret_name=s.ca_bundle_name)))
    assert env["BACKUP_KEEP"] == "3" and env["BAO_ADDR"] == "https://openbao-active.vault.svc:8200"


# --- OpenBaoBackup as a reusable component: narrow args, validated, analyzable ---------------


def test_backup_stands_alone_without_stack_settings() -> None:
    """Snapshots of another team's cluster "vault" in "secrets", trusting their CA-only Secret."""
    import pulumi

    from openbao_platform.backup import OpenBaoBackup
    from tests.support.component import run_components

    run = run_components(lambda: OpenBaoBackup("vault-backup", {
        "name": "vault", "namespace": "secrets", "ca_secret_name": pulumi.Output.from_input("vault-ca"),
        "keep": 7, "schedule": "30 2 * * *"}))
    assert {r.name for r in run.kubernetes_objects()} == {"vault-backup-sa", "vault-backup-script",
                                                          "vault-backup-pvc", "vault-backup-cronjob"}
    job = run.object("CronJob", "vault-backup")
    assert job["metadata"]["namespace"] == "secrets" and job["spec"]["schedule"] == "30 2 * * *"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    assert env["BAO_ADDR"] == "https://vault-active.secrets.svc:8200" and env["BACKUP_KEEP"] == "7"
    assert pod["serviceAccountName"] == "vault-backup"  # the name self-init binds to the backup role
    assert pod["containers"][0]["image"] == "quay.io/openbao/openbao:2.7.2"
    assert {v["name"]: v for v in pod["volumes"]}["ca"]["secret"]["secretName"] == "vault-ca"
    pvc = run.by_name("vault-backup-pvc")
    assert pvc.plain_props["spec"]["resources"]["requests"]["storage"] == "20Gi"
    assert "storageClassName" not in pvc.plain_props["spec"]  # the cluster default
    assert pvc.options["protect"] and pvc.options["retainOnDelete"]  # secure default: protect=True


def test_backup_rejects_bad_args_before_creating_anything() -> None:
    import pytest

    from openbao_platform.backup import OpenBaoBackup
    from openbao_platform.settings import ArgsError
    from tests.support.component import run_components

    errors: list[str] = []

    def build() -> None:
        with pytest.raises(ArgsError) as err:
            OpenBaoBackup("vault-backup", {"name": "vault", "namespace": "secrets", "ca_secret_name": "vault-ca",
                                           "schedule": "hourly", "keep": 0, "image": {"tag": "latest"},
                                           "storage_class_name": "Fast SSD"})
        errors.append(str(err.value))

    run = run_components(build)
    assert run.registrations == []  # validated before the component registers
    (text,) = errors
    assert "OpenBaoBackupArgs.schedule = \"hourly\": is not a five-field cron expression. Fix:" in text
    assert "OpenBaoBackupArgs.keep = 0: must keep at least one snapshot. Fix: use e.g. 28." in text
    assert "OpenBaoBackupArgs.image.tag = \"latest\": must be a fixed version tag" in text
    assert "OpenBaoBackupArgs.storage_class_name = \"Fast SSD\": is not a valid Kubernetes object name. Fix:" in text


def test_backup_schema_describes_every_input() -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    from openbao_platform.backup import OpenBaoBackup

    schema = Analyzer("openbao-platform").analyze([OpenBaoBackup])
    (comp,) = schema["component_definitions"].values()
    assert set(comp.inputs) == {"name", "namespace", "caSecretName", "schedule", "keep", "size", "storageClassName",
                                "image", "protect"}
    assert all(p.description for p in comp.inputs.values())
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"name", "namespace", "caSecretName"}
    assert not comp.inputs["caSecretName"].plain  # may come from another resource (ClusterPki)
    image = schema["type_definitions"]["ImageArgs"]
    assert set(image.properties) == {"repository", "tag", "digest", "pullPolicy"}
    assert all(p.description for p in image.properties.values())
    assert set(comp.outputs) == {"cronJobName", "claimName"} and all(p.description for p in comp.outputs.values())
