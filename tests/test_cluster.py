"""OpenBaoCluster: RBAC, Services, StatefulSet hardening and HA, PDB."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from openbao_platform import cluster_manifests as m
from openbao_platform.image import ImageArgs
from openbao_platform.server_config import config_files
from tests.support.cluster import stack_spec
from tests.support.program import ProgramRun


def pod_spec(run: ProgramRun) -> dict[str, Any]:
    return run.object("StatefulSet", "openbao")["spec"]["template"]["spec"]


def container(run: ProgramRun, name: str = "openbao") -> dict[str, Any]:
    (c,) = [c for c in pod_spec(run)["containers"] if c["name"] == name]
    return c


def test_role_is_exactly_pods_get_update_patch(prod_run: ProgramRun) -> None:
    role = prod_run.object("Role", "openbao-discovery")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "update", "patch"]}]
    rb = prod_run.object("RoleBinding", "openbao-discovery")
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "openbao", "namespace": "openbao"}]
    assert rb["roleRef"]["name"] == "openbao-discovery"


def test_auth_delegator_binding_for_kubernetes_auth(prod_run: ProgramRun) -> None:
    crb = prod_run.object("ClusterRoleBinding", "openbao-openbao-auth-delegator")
    assert crb["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                              "name": "system:auth-delegator"}


def test_service_accounts(prod_run: ProgramRun) -> None:
    assert prod_run.object("ServiceAccount", "openbao")["automountServiceAccountToken"] is True
    assert prod_run.object("ServiceAccount", "openbao-admin")["automountServiceAccountToken"] is False
    assert pod_spec(prod_run)["serviceAccountName"] == "openbao"


def test_services_select_the_right_pods(prod_run: ProgramRun) -> None:
    sel = {"app.kubernetes.io/name": "openbao", "app.kubernetes.io/instance": "openbao"}
    headless = prod_run.object("Service", "openbao-internal")["spec"]
    assert headless["clusterIP"] == "None" and headless["publishNotReadyAddresses"] is True
    assert {p["port"] for p in headless["ports"]} == {8200, 8201}
    assert prod_run.object("Service", "openbao-active")["spec"]["selector"] == {**sel, "openbao-active": "true"}
    assert prod_run.object("Service", "openbao-standby")["spec"]["selector"] == {**sel, "openbao-active": "false"}
    api = prod_run.object("Service", "openbao")["spec"]
    assert api["selector"] == sel and [p["port"] for p in api["ports"]] == [8200]


def test_statefulset_ha_shape(prod_run: ProgramRun) -> None:
    spec = prod_run.object("StatefulSet", "openbao")["spec"]
    assert spec["replicas"] == 5 and spec["updateStrategy"] == {"type": "OnDelete"}
    assert spec["podManagementPolicy"] == "Parallel" and spec["serviceName"] == "openbao-internal"
    claims = {c["metadata"]["name"]: c["spec"] for c in spec["volumeClaimTemplates"]}
    assert claims["data"]["resources"]["requests"]["storage"] == "20Gi"
    assert claims["audit"]["resources"]["requests"]["storage"] == "50Gi"
    assert claims["data"]["storageClassName"] == "fast-ssd"


def test_required_anti_affinity_and_zone_spread_in_production(prod_run: ProgramRun) -> None:
    aff = pod_spec(prod_run)["affinity"]
    (term,) = aff["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert term["topologyKey"] == "kubernetes.io/hostname"
    zones = aff["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
    assert zones["matchExpressions"][0]["values"] == ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
    (spread,) = pod_spec(prod_run)["topologySpreadConstraints"]
    assert spread["topologyKey"] == "topology.kubernetes.io/zone" and spread["whenUnsatisfiable"] == "DoNotSchedule"


def test_dev_prefers_spread_so_single_node_clusters_schedule(dev_run: ProgramRun) -> None:
    aff = pod_spec(dev_run)["affinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in aff["podAntiAffinity"]
    assert pod_spec(dev_run)["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "ScheduleAnyway"


def test_pod_security_restricted(prod_run: ProgramRun) -> None:
    pod = pod_spec(prod_run)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}  # and in particular no IPC_LOCK
        assert sc["runAsUser"] >= 10000 and sc["runAsNonRoot"] is True
        assert c["resources"]["limits"] and c["resources"]["requests"]
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert all("hostPath" not in v for v in pod["volumes"])


def test_resources_from_settings(prod_run: ProgramRun) -> None:
    assert container(prod_run)["resources"] == {"requests": {"cpu": "500m", "memory": "512Mi"},
                                                "limits": {"cpu": "2", "memory": "2Gi"}}


HEALTH = ["bao", "read", "-format=json", "-address=https://127.0.0.1:8200", "-ca-cert=/openbao/tls/ca.crt",
          "sys/health"]


def test_probes_verify_tls_with_the_ca_and_use_health_parameters(prod_run: ProgramRun) -> None:
    c = container(prod_run)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert not any("skip" in part.lower() for part in c[probe]["exec"]["command"]), probe
    # readiness: the verified read itself, so a certificate clients cannot verify makes the pod NotReady
    assert c["readinessProbe"]["exec"]["command"] == HEALTH + ["standbyok=true"]
    # startup and liveness: the same verified read (sealed or uninitialised answers 200), in a shell
    verified = " ".join(HEALTH + ["standbyok=true", "sealedcode=200", "uninitcode=200"])
    for probe in ("startupProbe", "livenessProbe"):
        shell, flag, script = c[probe]["exec"]["command"]
        assert (shell, flag) == ("/bin/sh", "-c") and f"out=$({verified} 2>&1) && exit 0" in script, probe
    assert c["startupProbe"]["exec"] == c["livenessProbe"]["exec"]
    timing = {p: (c[p]["periodSeconds"], c[p]["failureThreshold"]) for p in ("startupProbe", "livenessProbe",
                                                                             "readinessProbe")}
    assert timing == {"startupProbe": (5, 60), "livenessProbe": (10, 6), "readinessProbe": (5, 2)}


@pytest.mark.parametrize(("exit_code", "output", "alive"), [
    (0, '{"data": {"initialized": true}}', True),
    # the served certificate fails verification: a restart would serve the same files
    (2, 'Error reading sys/health: Get "https://127.0.0.1:8200/v1/sys/health?standbyok=true": tls: failed to '
        'verify certificate: x509: certificate has expired or is not yet valid: current time 2030-01-02T00:00:00Z '
        'is after 2030-01-01T00:00:00Z', True),
    (2, "... tls: failed to verify certificate: x509: certificate signed by unknown authority", True),
    # dead, hung or broken: restart
    (2, "... dial tcp 127.0.0.1:8200: connect: connection refused", False),
    (2, "... net/http: request canceled (Client.Timeout exceeded while awaiting headers)", False),
    (2, "Error reading sys/health: Error making API request.\nCode: 500. Errors:", False),
    (2, "No value found at sys/health", False),
    (1, "", False),
])
def test_liveness_fails_only_when_a_restart_can_help(tmp_path: Path, exit_code: int, output: str, alive: bool) -> None:
    """The liveness script with a stand-in `bao` that answers ``output`` and exits ``exit_code``."""
    fake = tmp_path / "bao"
    (tmp_path / "out").write_text(output)
    fake.write_text(f'#!/bin/sh\ncat "{tmp_path}/out" >&2\nexit {exit_code}\n')
    fake.chmod(0o755)
    command = m.probes()["livenessProbe"]["exec"]["command"]
    proc = subprocess.run(command, env={"PATH": f"{tmp_path}:/usr/bin:/bin"}, capture_output=True, text=True,
                          timeout=10)
    assert (proc.returncode == 0) is alive, (proc.returncode, proc.stdout, proc.stderr)


def test_downward_api_env_for_service_registration(prod_run: ProgramRun) -> None:
    env = {e["name"]: e for e in container(prod_run)["env"]}
    assert env["BAO_K8S_POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert env["BAO_K8S_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert env["BAO_RAFT_NODE_ID"]["value"] == "$(BAO_K8S_POD_NAME)"
    assert env["BAO_API_ADDR"]["value"] == "https://$(BAO_K8S_POD_NAME).openbao-internal.openbao.svc:8200"
    names = [e["name"] for e in container(prod_run)["env"]]
    assert names.index("BAO_K8S_POD_NAME") < names.index("BAO_API_ADDR")  # $(VAR) needs it defined first
    assert not any("secretKeyRef" in str(e) for e in container(prod_run)["env"])


def test_secrets_mounted_as_read_only_files(prod_run: ProgramRun) -> None:
    mounts = {mt["name"]: mt for mt in container(prod_run)["volumeMounts"]}
    for name in ("tls", "unseal", "init", "config"):
        assert mounts[name]["readOnly"] is True
    vols = {v["name"]: v for v in pod_spec(prod_run)["volumes"]}
    assert vols["tls"]["secret"]["secretName"] == "openbao-tls"
    assert vols["init"]["secret"]["secretName"] == "openbao-init"
    assert container(prod_run)["command"] == ["/bin/sh", "/openbao/config/start.sh"]


def test_pdb_keeps_quorum(prod_run: ProgramRun) -> None:
    pdb = prod_run.object("PodDisruptionBudget", "openbao")["spec"]
    assert pdb["maxUnavailable"] == 2  # 5 voters: losing 2 keeps 3
    assert pdb["selector"]["matchLabels"]["app.kubernetes.io/name"] == "openbao"


@pytest.mark.parametrize("replicas,expected", [(3, 1), (5, 2), (7, 3)])
def test_max_unavailable_keeps_majority(replicas: int, expected: int) -> None:
    assert m.max_unavailable(replicas) == expected
    assert replicas - expected > replicas // 2


def test_single_replica_has_no_pdb() -> None:
    assert m.pod_disruption_budget(stack_spec({"replicas": 1})) is None


def test_config_hash_tracks_config() -> None:
    a = stack_spec({})
    b = stack_spec({"tlsMinVersion": "tls13"})
    assert m.config_hash(config_files(a)) != m.config_hash(config_files(b))
    assert m.config_hash(config_files(a)) == m.config_hash(config_files(a))


def test_image_pinned_from_settings(prod_run: ProgramRun) -> None:
    assert container(prod_run)["image"] == "quay.io/openbao/openbao:2.7.2"


def test_no_sidecar_and_no_shared_process_namespace(prod_run: ProgramRun) -> None:
    """Cert reload is OpenBao's own (tls_auto_reload): no container may see the server's processes."""
    pod = pod_spec(prod_run)
    assert [c["name"] for c in pod["containers"]] == ["openbao"]
    assert not pod.get("shareProcessNamespace")


def test_services_carry_component_labels(prod_run: ProgramRun) -> None:
    comps = {n: prod_run.object("Service", n)["metadata"]["labels"]["app.kubernetes.io/component"]
             for n in ("openbao-internal", "openbao", "openbao-active", "openbao-standby")}
    assert comps == {"openbao-internal": "peers", "openbao": "api", "openbao-active": "active",
                     "openbao-standby": "standby"}


def test_scan_waivers_carry_reasons_and_follow_the_digest(prod_run: ProgramRun) -> None:
    ann = prod_run.object("StatefulSet", "openbao")["metadata"]["annotations"]
    waived = {v.split("=", 1)[0] for k, v in ann.items() if k.startswith("checkov.io/skip")}
    assert waived == {"CKV_K8S_38", "CKV_K8S_15", "CKV_K8S_43"}
    digest = stack_spec({"image": {"digest": "sha256:" + "b" * 64}})
    assert "CKV_K8S_43" not in str(m.waiver_annotations(m.image_waivers(digest)))


# --- OpenBaoCluster as a reusable component: narrow args, validated, analyzable ----------------

#: A team's own cluster: no stack settings, only the args and the Secrets it already has.
TEAM_ARGS: dict[str, Any] = {"name": "vault", "namespace": "secrets", "replicas": 3,
                             "tls_secret_name": "vault-tls", "unseal_secret_name": "vault-unseal",
                             "init_secret_name": "vault-init"}


def _rejected(args: dict[str, Any]) -> tuple[str, list[Any]]:
    """The ArgsError text for ``args``, and what the program registered around it.

    The error is caught inside the program, so the run awaits every registration the SDK had
    started: a component that registered itself before validating would show up here.
    """
    from openbao_platform.cluster import OpenBaoCluster
    from openbao_platform.settings import ArgsError
    from tests.support.component import run_components

    errors: list[ArgsError] = []

    def build() -> None:
        try:
            OpenBaoCluster("vault", args)  # type: ignore[arg-type]
        except ArgsError as err:
            errors.append(err)

    run = run_components(build)
    assert errors, "bad args were accepted"
    return str(errors[0]), run.registrations


def test_cluster_stands_alone_without_stack_settings() -> None:
    import pulumi

    from openbao_platform.cluster import OpenBaoCluster
    from tests.support.component import run_components
    from tests.support.program import resolve

    built: list[OpenBaoCluster] = []

    def build() -> OpenBaoCluster:
        # A Secret name may come from another resource's output: pulumi.Input.
        built.append(OpenBaoCluster("team", {**TEAM_ARGS, "tls_secret_name": pulumi.Output.from_input("vault-tls")}))
        return built[0]

    run = run_components(build)
    sts = run.object("StatefulSet", "vault")
    assert sts["metadata"]["namespace"] == "secrets" and m.PRODUCTION_LABEL not in sts["metadata"]["labels"]
    spec = sts["spec"]
    assert spec["serviceName"] == "vault-internal" and spec["replicas"] == 3
    assert spec["selector"]["matchLabels"] == {"app.kubernetes.io/name": "openbao", "app.kubernetes.io/instance": "vault"}
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "vault"
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"tls": "vault-tls", "unseal": "vault-unseal", "init": "vault-init"}
    assert {v["name"]: v for v in pod["volumes"]}["config"]["configMap"]["name"] == "vault-config"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["BAO_API_ADDR"] == "https://$(BAO_K8S_POD_NAME).vault-internal.secrets.svc:8200"
    assert env["BAO_SELF_INIT_NODE"] == "vault-0"

    svcs = {r.props["metadata"]["name"]: r for r in run.of_type("kubernetes:core/v1:Service")}
    assert set(svcs) == {"vault-internal", "vault", "vault-active", "vault-standby"}
    assert {r.name for r in svcs.values()} == {f"team-svc-{n}" for n in svcs}  # child names follow the component's
    assert all(r.props["metadata"]["namespace"] == "secrets" for r in svcs.values())
    assert svcs["vault-active"].props["spec"]["selector"]["app.kubernetes.io/instance"] == "vault"

    assert run.object("Role", "vault-discovery")["metadata"]["namespace"] == "secrets"
    assert run.object("RoleBinding", "vault-discovery")["subjects"] == [
        {"kind": "ServiceAccount", "name": "vault", "namespace": "secrets"}]
    crb = run.object("ClusterRoleBinding", "secrets-vault-auth-delegator")
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "vault", "namespace": "secrets"}]
    assert run.object("ServiceAccount", "openbao-admin")["metadata"]["namespace"] == "secrets"

    cm = run.object("ConfigMap", "vault-config")["data"]
    config = json.loads(cm["server.json"])
    hosts = [f"vault-{i}.vault-internal.secrets.svc" for i in range(3)]
    assert config["storage"]["raft"]["retry_join"] == [
        {"leader_api_addr": f"https://{h}:8200", "leader_ca_cert_file": "/openbao/tls/ca.crt",
         "leader_tls_servername": h} for h in hosts]
    assert config["cluster_name"] == "vault" and config["service_registration"]["kubernetes"]["namespace"] == "secrets"
    assert config["seal"]["static"]["current_key_id"] == "unseal-v1"
    assert "telemetry" not in config["listener"][0]["tcp"]  # unauthenticated metrics are off by default
    init = json.loads(cm["initialize.json"])["initialize"]
    assert "kubernetes-role-backup" not in json.dumps(init)  # no backup role unless asked for
    assert m.config_hash(cm) == spec["template"]["metadata"]["annotations"][m.CONFIG_HASH_ANNOTATION]

    assert run.object("PodDisruptionBudget", "vault")["spec"]["maxUnavailable"] == 1
    (sts_reg,) = run.of_type("kubernetes:apps/v1:StatefulSet")
    assert sts_reg.name == "team-statefulset" and sts_reg.options["protect"] is True  # secure default
    assert resolve(built[0].service_names) == {"api": "vault", "active": "vault-active", "standby": "vault-standby",
                                              "headless": "vault-internal"}
    assert resolve(built[0].service_account_name) == "vault"
    assert resolve(built[0].admin_service_account_name) == "openbao-admin"


def test_cluster_args_switch_what_the_stack_sections_switched() -> None:
    from openbao_platform.cluster import cluster_spec
    from openbao_platform.server_config import initialize_config, server_config

    spec = cluster_spec({**TEAM_ARGS, "production": True, "backup_auth_role": True, "unauthenticated_metrics": True,
                         "cluster_name": "vault-prod", "unseal": {"key_version": 3, "previous_key_version": 2},
                         "topology": {"zones": ["a", "b", "c"]}, "storage": {"class_name": "fast", "data_size": "5Gi"},
                         "image": {"digest": "sha256:" + "c" * 64}, "protect": False})
    config = server_config(spec)
    assert config["cluster_name"] == "vault-prod"
    assert config["listener"][0]["tcp"]["telemetry"] == {"unauthenticated_metrics_access": True}
    assert config["seal"]["static"]["current_key_id"] == "unseal-v3"
    assert config["seal"]["static"]["previous_key_id"] == "unseal-v2"
    role = [r for b in initialize_config(spec)["initialize"] for body in b.values() for req in body["request"]
            for n, r in req.items() if n == "kubernetes-role-backup"]
    assert role and role[0]["data"]["bound_service_account_names"] == ["vault-backup"]
    sts = m.stateful_set(spec, {}, "t", "u", "i")
    assert sts["metadata"]["labels"][m.PRODUCTION_LABEL] == "true"
    pod = sts["spec"]["template"]["spec"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" in pod["affinity"]["podAntiAffinity"]
    assert pod["topologySpreadConstraints"][0]["whenUnsatisfiable"] == "DoNotSchedule"
    assert pod["containers"][0]["image"] == "quay.io/openbao/openbao:2.7.2@sha256:" + "c" * 64
    data = sts["spec"]["volumeClaimTemplates"][0]["spec"]
    assert data["storageClassName"] == "fast" and data["resources"]["requests"]["storage"] == "5Gi"
    assert spec.protect is False


@pytest.mark.parametrize("change,expected", [
    ({"replicas": 4}, 'OpenBaoClusterArgs.replicas = 4: is even; an even Raft cluster'),
    ({"replicas": 1, "production": True}, "OpenBaoClusterArgs.replicas = 1: is below 3"),
    ({"tls_min_version": "tls11"}, 'OpenBaoClusterArgs.tls_min_version = "tls11": is not allowed'),
    ({"name": "Vault"}, 'OpenBaoClusterArgs.name = "Vault": is not a valid DNS-1123 label'),
    ({"name": None}, "OpenBaoClusterArgs.name = null: is required"),
    ({"tls_secret_name": None}, "OpenBaoClusterArgs.tls_secret_name = null: is required"),
    ({"unseal_secret_name": "Bad_Name"}, 'OpenBaoClusterArgs.unseal_secret_name = "Bad_Name": is not a valid'),
    ({"init_secret_name": None}, "OpenBaoClusterArgs.init_secret_name = null: is required while self_init.userpass_admin"),
    ({"image": {"tag": "latest"}}, 'OpenBaoClusterArgs.image.tag = "latest": must be a fixed version tag'),
    ({"storage": {"data_size": "512Mi"}}, 'OpenBaoClusterArgs.storage.data_size = "512Mi": is below 1Gi'),
    ({"storage": {"size": "5Gi"}}, 'OpenBaoClusterArgs.storage.size = "5Gi": is not a setting'),
    ({"resources": {"cpu_request": "4"}}, 'OpenBaoClusterArgs.resources.cpu_request = "4": is larger than'),
    ({"production": True, "topology": {"zones": ["a", "b"]}},
     'OpenBaoClusterArgs.topology.zones = ["a", "b"]: lists fewer than 3 zones'),
    ({"unseal": {"key_version": 2, "previous_key_version": 2}},
     "OpenBaoClusterArgs.unseal.previous_key_version = 2: must be lower than"),
    ({"self_init": "yes"}, 'OpenBaoClusterArgs.self_init = "yes": must be an object'),
    ({"self_init": {"peer_wait_seconds": 0}}, "OpenBaoClusterArgs.self_init.peer_wait_seconds = 0: must be between"),
    ({"self_init": {"enabled": False}, "backup_auth_role": True},
     "OpenBaoClusterArgs.backup_auth_role = true: the backup role is created by self-init"),
    ({"audit": {"file": False, "stdout": False}}, "OpenBaoClusterArgs.audit.file = false: no audit device"),
    ({"replica": 3}, "OpenBaoClusterArgs.replica = 3: is not a setting"),
    ({"protect": "yes"}, 'OpenBaoClusterArgs.protect = "yes": must be true or false'),
], ids=lambda v: v if isinstance(v, str) else None)
def test_cluster_rejects_bad_args_before_creating_anything(change: dict[str, Any], expected: str) -> None:
    text, registered = _rejected({**TEAM_ARGS, **change})
    assert expected in text and "Fix: " in text.split(expected, 1)[1].splitlines()[0]
    assert registered == []


def test_cluster_lists_every_bad_arg_at_once() -> None:
    text, registered = _rejected({"name": "vault", "namespace": "secrets", "replicas": 2,
                                  "image": {"tag": "latest"}, "storage": {"audit_size": "1Mi"}})
    for key in ("tls_secret_name", "unseal_secret_name", "init_secret_name", "replicas", "image.tag",
                "storage.audit_size"):
        assert f"OpenBaoClusterArgs.{key} = " in text, key
    assert "6 problem(s) in the args of OpenBaoCluster" in text and registered == []


def test_cluster_nested_args_mirror_the_stack_sections() -> None:
    """One set of rules: each nested args type is its stack config section, field for field."""
    import dataclasses

    from openbao_platform import cluster
    from openbao_platform.server_config import ClusterSpec

    nested = {"image": ImageArgs, "storage": cluster.ClusterStorageArgs,
              "resources": cluster.ClusterResourcesArgs, "topology": cluster.ClusterTopologyArgs,
              "unseal": cluster.ClusterUnsealArgs, "self_init": cluster.ClusterSelfInitArgs,
              "audit": cluster.ClusterAuditArgs}
    section_types = {f.name: f.type for f in dataclasses.fields(ClusterSpec)}
    for key, args_type in nested.items():
        assert cluster.OpenBaoClusterArgs.__annotations__[key] is args_type
        section = getattr(ClusterSpec(name="n", namespace="ns", cluster_name="n"), key)
        assert set(args_type.__annotations__) == {f.name for f in dataclasses.fields(section)}, key
        assert section_types[key] == type(section).__name__, key


def test_cluster_schema_describes_every_input() -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    from openbao_platform.cluster import OpenBaoCluster

    result = Analyzer("openbao-platform").analyze([OpenBaoCluster])
    (comp,) = result["component_definitions"].values()
    assert set(comp.inputs) == {
        "name", "namespace", "tlsSecretName", "unsealSecretName", "initSecretName", "replicas", "production",
        "tlsMinVersion", "clusterName", "image", "storage", "resources", "topology", "unseal", "selfInit", "audit",
        "backupAuthRole", "reconcilerAuthRole", "unauthenticatedMetrics", "protect"}
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"name", "namespace", "tlsSecretName",
                                                                      "unsealSecretName"}
    assert all(p.description for p in comp.inputs.values())
    assert comp.inputs["image"].ref == "#/types/openbao-platform:index:ImageArgs"
    assert comp.inputs["tlsSecretName"].plain is None and comp.inputs["replicas"].plain  # Input vs plain
    types = result["type_definitions"]
    assert set(types) == {"ImageArgs", "ClusterStorageArgs", "ClusterResourcesArgs", "ClusterTopologyArgs",
                          "ClusterUnsealArgs", "ClusterSelfInitArgs", "ClusterAuditArgs"}
    for t in types.values():
        assert t.description and t.properties and all(p.description for p in t.properties.values()), t.name
    assert set(comp.outputs) == {"statefulSetName", "serviceNames", "serviceAccountName", "adminServiceAccountName"}
    assert all(p.description for p in comp.outputs.values())
