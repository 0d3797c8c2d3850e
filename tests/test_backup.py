"""OpenBaoBackup: the CronJob, its identity, volume and least privilege."""

from __future__ import annotations

from typing import Any

from components.backup import backup_environment
from components.settings import parse_settings
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
    env = backup_environment(s)
    assert env["BACKUP_KEEP"] == "3" and env["BAO_ADDR"] == "https://openbao-active.vault.svc:8200"
