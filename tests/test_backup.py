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
                                "image", "protect", "local", "remote", "drill", "kvMount", "unsealSecretName",
                                "unsealKeyId", "unsealPreviousKeyId", "dnsNamespace", "dnsPodLabels"}
    assert all(p.description for p in comp.inputs.values())
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"name", "namespace", "caSecretName"}
    assert not comp.inputs["caSecretName"].plain  # may come from another resource (ClusterPki)
    image = schema["type_definitions"]["ImageArgs"]
    assert set(image.properties) == {"repository", "tag", "digest", "pullPolicy"}
    assert all(p.description for p in image.properties.values())
    assert set(comp.outputs) == {"cronJobName", "claimName", "drillCronJobName"}
    assert all(p.description for p in comp.outputs.values())
    assert not comp.inputs["unsealSecretName"].plain  # may come from UnsealKey
    drill = schema["type_definitions"]["DrillArgs"]
    assert set(drill.properties) == {"enabled", "schedule", "credentialsSecretName"}
    assert all(p.description for p in drill.properties.values())
    remote = schema["type_definitions"]["RemoteBackupArgs"]
    assert set(remote.properties) == {"enabled", "endpoint", "bucket", "prefix", "region", "caSecretName",
                                      "credentialsSecretName", "serviceAccountAnnotations", "keep", "keepDays",
                                      "endpointCidrs", "endpointPort"}
    assert all(p.description for p in remote.properties.values())


# --- object storage (backup.remote): snapshot step, then the pinned rclone upload ------------

REMOTE = {"enabled": True, "endpoint": "https://s3.eu-west-1.amazonaws.com", "bucket": "acme-openbao-backups",
          "prefix": "openbao/prod", "region": "eu-west-1", "keep": 30, "keepDays": 14,
          "endpointCidrs": ["52.218.0.0/17"], "credentialsSecretName": "openbao-s3", "caSecretName": "openbao-s3-ca"}


def remote_run(local: bool = True, **remote: Any) -> ProgramRun:
    raw = {**stack_config("prod"), "backup": {"local": local, "remote": {**REMOTE, **remote}}}
    return run_program("prod", raw)


def test_remote_upload_runs_after_the_verified_snapshot_in_the_pinned_rclone() -> None:
    from openbao_platform.backup import RCLONE_IMAGE, RCLONE_VERSION

    run = remote_run()
    pod = job_pod(run)["spec"]
    (snap,) = pod["initContainers"]
    (upload,) = pod["containers"]
    assert snap["image"].startswith("quay.io/openbao/openbao:") and snap["command"][-1] == "/scripts/backup.sh"
    assert upload["image"] == RCLONE_IMAGE == f"docker.io/rclone/rclone:{RCLONE_VERSION}"
    assert upload["command"] == ["/bin/sh", "/scripts/remote.sh", "upload"]
    env = {e["name"]: e for e in upload["env"]}
    plain = {k: e["value"] for k, e in env.items() if "value" in e}
    assert plain["RCLONE_CONFIG_BACKUP_TYPE"] == "s3" and plain["RCLONE_CONFIG_BACKUP_ENV_AUTH"] == "false"
    assert plain["RCLONE_CONFIG_BACKUP_ENDPOINT"] == "https://s3.eu-west-1.amazonaws.com"
    assert plain["RCLONE_CONFIG_BACKUP_REGION"] == "eu-west-1" and plain["RCLONE_CONFIG"] == "/dev/null"
    assert plain["BACKUP_REMOTE_BUCKET"] == "acme-openbao-backups" and plain["BACKUP_REMOTE_PREFIX"] == "openbao/prod"
    assert plain["BACKUP_REMOTE_KEEP"] == "30" and plain["BACKUP_REMOTE_KEEP_DAYS"] == "14"
    assert plain["RCLONE_CA_CERT"] == "/openbao/remote-ca/ca.crt"
    # the access key: the existing Secret mounted read-only as files, never a value or a secretKeyRef in env
    assert not [e for e in env.values() if "valueFrom" in e]
    assert plain["BACKUP_REMOTE_CREDENTIALS_DIR"] == "/openbao/remote-credentials"
    # the OpenBao token stays with the snapshot step; rclone sees the snapshots read-only
    mounts = {m["name"]: m for m in upload["volumeMounts"]}
    assert "token" not in mounts and "ca" not in mounts and mounts["backup"]["readOnly"] is True
    assert mounts["remote-ca"]["readOnly"] is True and mounts["remote-credentials"]["readOnly"] is True
    assert mounts["remote-credentials"]["mountPath"] == "/openbao/remote-credentials"
    vols = {v["name"]: v for v in pod["volumes"]}
    assert vols["remote-credentials"]["secret"]["secretName"] == "openbao-s3"
    assert [i["key"] for i in vols["remote-credentials"]["secret"]["items"]] == ["access-key-id", "secret-access-key"]
    assert vols["remote-ca"]["secret"]["secretName"] == "openbao-s3-ca"
    assert vols["backup"]["persistentVolumeClaim"]["claimName"] == "openbao-backup"  # local copy kept
    for c in (snap, upload):
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
        assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}
        assert c["securityContext"]["allowPrivilegeEscalation"] is False
    data = run.object("ConfigMap", "openbao-backup-script")["data"]
    assert set(data) == {"backup.sh", "remote.sh"} and "hashsum sha256 --download" in data["remote.sh"]
    # only the remote-credentials volume mounts the access key, and only into the upload container
    snap_mounts = {m["name"] for m in snap["volumeMounts"]}
    assert "remote-credentials" not in snap_mounts and "remote-ca" not in snap_mounts


def test_object_storage_only_drops_the_volume_and_keeps_one_snapshot_per_run() -> None:
    run = remote_run(local=False)
    assert not [r for r in run.registrations if r.type.endswith("PersistentVolumeClaim")]
    pod = job_pod(run)["spec"]
    vols = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in vols["backup"] and "persistentVolumeClaim" not in vols["backup"]
    env = {e["name"]: e["value"] for e in pod["initContainers"][0]["env"]}
    assert env["BACKUP_KEEP"] == "1"


def test_workload_identity_annotates_the_service_account_and_uses_env_auth() -> None:
    arn = "arn:aws:iam::123456789012:role/openbao-backup"
    run = remote_run(credentialsSecretName=None, serviceAccountAnnotations={"eks.amazonaws.com/role-arn": arn})
    sa = run.object("ServiceAccount", "openbao-backup")
    assert sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == arn
    assert sa["automountServiceAccountToken"] is False
    (upload,) = job_pod(run)["spec"]["containers"]
    env = {e["name"]: e for e in upload["env"]}
    assert env["RCLONE_CONFIG_BACKUP_ENV_AUTH"]["value"] == "true"
    assert "BACKUP_REMOTE_CREDENTIALS_DIR" not in env
    assert "remote-credentials" not in {v["name"] for v in job_pod(run)["spec"]["volumes"]}


def test_remote_settings_are_validated_key_value_fix() -> None:
    import pytest

    from openbao_platform.settings import SettingsError

    bad = {"enabled": True, "endpoint": "http://s3.example.com", "bucket": "UPPER", "keep": 0, "keepDays": -1,
           "endpointCidrs": ["0.0.0.0/0"], "endpointPort": 0, "caSecretName": "Bad Name", "color": "blue"}
    with pytest.raises(SettingsError) as err:
        parse_settings({"backup": {"remote": bad}}, "dev")
    text = str(err.value)
    for needle in ("backup.remote.endpoint = \"http://s3.example.com\": is not an https:// URL",
                   "backup.remote.bucket = \"UPPER\": is not a valid bucket name",
                   "backup.remote.keep = 0: must keep at least one snapshot",
                   "backup.remote.keepDays = -1: must not be negative",
                   "backup.remote.endpointCidrs = \"0.0.0.0/0\": opens egress to every address",
                   "backup.remote.endpointPort = 0: is not a TCP port",
                   "backup.remote.caSecretName = \"Bad Name\": is not a valid Kubernetes object name",
                   "backup.remote.color = \"blue\": is not a setting this program reads",
                   "backup.remote.credentialsSecretName = null: exactly one of credentialsSecretName"):
        assert needle in text, (needle, text)
    assert "Fix:" in text
    with pytest.raises(SettingsError, match="no snapshot would be kept anywhere"):
        parse_settings({"backup": {"local": False}}, "dev")
    with pytest.raises(SettingsError, match="endpointCidrs = \\[\\]: must not be empty"):
        parse_settings({"backup": {"remote": {**REMOTE, "endpointCidrs": []}}}, "dev")
    s = parse_settings({}, "dev")
    assert s.backup.local is True and s.backup.remote.enabled is False  # defaults: nothing new deployed


def test_remote_args_are_checked_by_the_component_too() -> None:
    import pytest

    from openbao_platform.settings import ArgsError

    with pytest.raises(ArgsError) as err:
        backup_spec({"name": "vault", "namespace": "secrets", "ca_secret_name": "vault-ca",
                     "remote": {"enabled": True, "endpoint": "https://s3.example.com", "bucket": "b-1",
                                "endpoint_cidrs": ["10.0.0.0/8"], "keep_days": -2,
                                "service_account_annotations": {"iam.gke.io/gcp-service-account": "b@p.iam"}}})
    assert "OpenBaoBackupArgs.remote.keep_days = -2: must not be negative" in str(err.value)


# --- the restore drill (backup.drill): fetch, throwaway restore, mark good ---------------------

DRILL = {"enabled": True, "credentialsSecretName": "openbao-backup-drill"}


def drill_run(**drill: Any) -> ProgramRun:
    raw = {**stack_config("prod"), "backup": {"remote": REMOTE, "drill": {**DRILL, **drill}}}
    return run_program("prod", raw)


def drill_pod(run: ProgramRun) -> dict[str, Any]:
    return run.object("CronJob", "openbao-backup-drill")["spec"]["jobTemplate"]["spec"]["template"]


def test_backup_job_writes_the_canary_its_policy_allows() -> None:
    """The canary path is the one the backup policy may write (create/update, never read); it is
    written only when the drill reads it, so a cluster whose backup policy predates the canary
    keeps backing up after an upgrade."""
    import json

    from openbao_platform.server_config import backup_policy

    (plain,) = job_pod(remote_run())["spec"]["initContainers"]
    assert "BACKUP_CANARY_PATH" not in {e["name"] for e in plain["env"]}
    run = drill_run()
    (snap,) = job_pod(run)["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in snap["env"]}
    assert env["BACKUP_CANARY_PATH"] == "secret/data/openbao-platform/backup-canary"
    rules = json.loads(backup_policy("secret"))["path"]
    assert rules == {"sys/storage/raft/snapshot": {"capabilities": ["read"]},
                     env["BACKUP_CANARY_PATH"]: {"capabilities": ["create", "update"]}}
    assert "canary" in run.object("ConfigMap", "openbao-backup-script")["data"]["backup.sh"]


def test_drill_holds_the_unseal_key_and_cannot_reach_the_api() -> None:
    run = drill_run()
    job = run.object("CronJob", "openbao-backup-drill")["spec"]
    assert job["schedule"] == "30 */6 * * *" and job["concurrencyPolicy"] == "Forbid"
    pod = drill_pod(run)
    spec = pod["spec"]
    fetch, drill = spec["initContainers"]
    (mark,) = spec["containers"]
    assert fetch["command"][-2:] == ["candidate", "/drill"] and mark["command"][-2:] == ["mark", "/drill"]
    assert drill["command"] == ["/bin/sh", "/scripts/drill.sh"] and drill["image"].startswith("quay.io/openbao/")
    assert spec["serviceAccountName"] == "openbao-backup-drill" and spec["automountServiceAccountToken"] is False
    assert run.object("ServiceAccount", "openbao-backup-drill")["automountServiceAccountToken"] is False
    vols = {v["name"]: v for v in spec["volumes"]}
    assert vols["unseal"]["secret"]["secretName"] == "openbao-unseal"
    assert [i["key"] for i in vols["unseal"]["secret"]["items"]] == ["unseal-v1"]
    assert vols["drill-credentials"]["secret"]["secretName"] == "openbao-backup-drill"
    assert "token" not in vols and "ca" not in vols  # no OpenBao token, no projected SA token, no API CA
    # the seal key and the drill password only in the drill container; the bucket key only in rclone's
    mounts = {c["name"]: {m["name"]: m for m in c["volumeMounts"]} for c in (fetch, drill, mark)}
    assert mounts["drill"]["unseal"]["readOnly"] is True and mounts["drill"]["drill-credentials"]["readOnly"] is True
    assert "unseal" not in mounts["fetch"] and "unseal" not in mounts["mark"]
    assert "remote-credentials" not in mounts["drill"] and "remote-credentials" in mounts["fetch"]
    assert mounts["mark"]["drill"]["readOnly"] is True
    # the restored data opens the cluster's file audit device at its path: a throwaway volume there
    assert mounts["drill"]["drill-audit"]["mountPath"] == "/openbao/audit" and "emptyDir" in vols["drill-audit"]
    env = {e["name"]: e["value"] for e in drill["env"]}
    assert env["DRILL_ADDR"] == "127.0.0.1" and env["DRILL_KEY_ID"] == "unseal-v1"
    assert env["DRILL_CANARY_PATH"] == "secret/data/openbao-platform/backup-canary"
    assert env["DRILL_PASSWORD_FILE"] == "/openbao/drill-credentials/password"
    for c in (fetch, drill, mark):
        assert not [e for e in c["env"] if "valueFrom" in e]
        assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # its labels are not the backup pods': the OpenBao pods' NetworkPolicy does not admit it
    labels = pod["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "openbao-backup-drill"
    netpol = run.object("NetworkPolicy", "openbao-backup-drill")["spec"]
    assert netpol["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "openbao-backup-drill"
    assert netpol["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in netpol
    dns, storage = netpol["egress"]
    assert {p["port"] for p in dns["ports"]} == {53}
    assert storage == {"to": [{"ipBlock": {"cidr": "52.218.0.0/17"}}], "ports": [{"protocol": "TCP", "port": 443}]}
    server = run.object("NetworkPolicy", "openbao-server")["spec"]
    admitted = [peer.get("podSelector", {}).get("matchLabels", {}) for rule in server["ingress"] for peer in rule["from"]]
    assert not [m for m in admitted if m.get("app.kubernetes.io/name") == "openbao-backup-drill"]
    assert set(run.object("ConfigMap", "openbao-backup-script")["data"]) == {"backup.sh", "remote.sh", "drill.sh"}


def test_drill_mounts_the_previous_key_during_a_rotation() -> None:
    raw = {**stack_config("prod"), "unseal": {"keyVersion": 2, "previousKeyVersion": 1},
           "backup": {"remote": REMOTE, "drill": DRILL}}
    spec = drill_pod(run_program("prod", raw))["spec"]
    (drill,) = [c for c in spec["initContainers"] if c["name"] == "drill"]
    env = {e["name"]: e["value"] for e in drill["env"]}
    assert env["DRILL_KEY_ID"] == "unseal-v2" and env["DRILL_PREVIOUS_KEY_ID"] == "unseal-v1"
    (unseal,) = [v for v in spec["volumes"] if v["name"] == "unseal"]
    assert [i["key"] for i in unseal["secret"]["items"]] == ["unseal-v2", "unseal-v1"]


def test_no_drill_without_the_setting() -> None:
    run = remote_run()
    assert not [r for r in run.registrations if "drill" in r.name]
    assert "drill.sh" not in run.object("ConfigMap", "openbao-backup-script")["data"]


def test_drill_args_are_checked_by_the_component_too() -> None:
    import pytest

    from openbao_platform.settings import ArgsError

    base = {"name": "vault", "namespace": "secrets", "ca_secret_name": "vault-ca",
            "remote": {"enabled": True, "endpoint": "https://s3.example.com", "bucket": "b-1",
                       "endpoint_cidrs": ["10.0.0.0/8"], "credentials_secret_name": "s3"}}
    with pytest.raises(ArgsError) as err:
        backup_spec({**base, "drill": {"enabled": True, "credentials_secret_name": "d"}, "kv_mount": "/bad/",
                     "unseal_key_id": "bad id"})
    text = str(err.value)
    assert "OpenBaoBackupArgs.unseal_secret_name = null: must be a string" in text, text
    assert "OpenBaoBackupArgs.kv_mount = \"/bad/\": is not a mount path" in text
    assert "OpenBaoBackupArgs.unseal_key_id = \"bad id\": is not a seal key id" in text
