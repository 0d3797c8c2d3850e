"""OpenBaoCluster: RBAC, Services, StatefulSet hardening and HA, PDB."""

from __future__ import annotations

from typing import Any

import pytest

from components import cluster_manifests as m
from components.server_config import config_files
from components.settings import parse_settings
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


def test_probes_verify_tls_with_the_ca_and_use_health_parameters(prod_run: ProgramRun) -> None:
    c = container(prod_run)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        cmd = c[probe]["exec"]["command"]
        assert cmd[:2] == ["bao", "read"] and "sys/health" in cmd
        assert "-ca-cert=/openbao/tls/ca.crt" in cmd and "-address=https://127.0.0.1:8200" in cmd
        assert not any("skip" in part.lower() for part in cmd)
    ready = c["readinessProbe"]["exec"]["command"]
    assert "standbyok=true" in ready and not any(p.startswith("sealedcode") for p in ready)
    live = c["livenessProbe"]["exec"]["command"]
    assert {"standbyok=true", "sealedcode=204", "uninitcode=204"} <= set(live)


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
    assert m.pod_disruption_budget(parse_settings({"replicas": 1}, "t")) is None


def test_config_hash_tracks_config() -> None:
    a = parse_settings({}, "t")
    b = parse_settings({"tlsMinVersion": "tls13"}, "t")
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
    digest = parse_settings({"image": {"digest": "sha256:" + "b" * 64}}, "t")
    assert "CKV_K8S_43" not in str(m.waiver_annotations(m.image_waivers(digest)))
