"""Configuration as code: the tenants/policies settings, the desired state, OpenBaoConfiguration's
objects (ConfigMap, Job named by the state's hash, CronJob, ServiceAccount), the reconciler's
self-init role and policy, and the tenants' network access."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from openbao_platform.configuration import (JOB_TIMEOUTS, OpenBaoConfiguration, configuration_spec, job_name,
                                            reconciler_labels)
from openbao_platform.declared import desired_state
from openbao_platform.netpol_eval import Cluster, External, Pod
from openbao_platform.network import network_policies, network_spec
from openbao_platform.platform import cluster_args, configuration_args, network_args
from openbao_platform.server_config import initialize_config, reconciler_policy
from openbao_platform.cluster import cluster_spec
from openbao_platform.settings import SettingsError, parse_settings
from tests.support.component import rejected_args, run_components
from tests.support.program import run_program, stack_config

TENANTS = {"team-a": {"serviceAccounts": ["app"]},
           "team-b": {"serviceAccounts": ["web", "api"], "policies": ["ci"], "tokenTtl": "15m", "tokenMaxTtl": "1h"}}
POLICIES = {"ci": {"secret/data/shared/*": ["read", "list"]}}
ENGINES = {"payments-kv": {"type": "kv-v2", "description": "payments team", "maxVersions": 5, "casRequired": True},
           "web-pki": {"type": "pki", "defaultLeaseTtl": "1h", "maxLeaseTtl": "720h"},
           "orders-transit": {"type": "transit"}}


def settings(**raw: Any):
    return parse_settings({**copy.deepcopy(stack_config("prod")), **raw}, "prod")


def problems(**raw: Any) -> list[str]:
    with pytest.raises(SettingsError) as err:
        settings(**raw)
    return err.value.problems


# --- settings ---------------------------------------------------------------------------------


def test_tenants_default_to_their_own_subtree_and_bounded_ttls() -> None:
    c = settings(tenants=TENANTS, policies=POLICIES).configuration
    a, b = c.tenants
    assert a.namespace == "team-a" and a.service_accounts == ("app",)
    assert a.read == a.write == ("secret/data/tenants/team-a/*", "secret/metadata/tenants/team-a/*")
    assert (a.token_ttl, a.token_max_ttl) == (3600, 14400)
    assert b.service_accounts == ("api", "web") and b.policies == ("ci",) and (b.token_ttl, b.token_max_ttl) == (900, 3600)
    assert [p.policy_name for p in c.policies] == ["shared-ci"]
    assert settings().configuration.tenants == () and settings().configuration.schedule == "*/30 * * * *"


@pytest.mark.parametrize("raw,expected", [
    ({"tenants": {"team-a": {"serviceAccounts": ["*"]}}}, "tenants.team-a.serviceAccounts = \"*\": binds every ServiceAccount"),
    ({"tenants": {"team-a": {}}}, "tenants.team-a.serviceAccounts = null: must list at least one ServiceAccount"),
    ({"tenants": {"openbao": {"serviceAccounts": ["app"]}}}, "tenants.openbao = \"openbao\": is the OpenBao namespace itself"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"], "read": ["sys/*"]}}}, "tenants.team-a.read = \"sys/*\": is under sys/"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"], "write": ["auth/token/create"]}}}, "is under auth/"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"], "read": ["secret/data/tenants/team-b/*"]}}},
     "tenants.team-a.read = \"secret/data/tenants/team-b/*\": is tenant team-b's subtree"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"], "write": ["secret/data/openbao-platform/reconciler"]}}},
     "is the reconciler's ownership record"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"], "policies": ["missing"]}}},
     "tenants.team-a.policies = \"missing\": is not declared under `policies`"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"], "tokenTtl": "2d"}}}, "tenants.team-a.tokenTtl = \"2d\": is not a duration"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"], "tokenMaxTtl": "48h"}}}, "is outside 60s-24h"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"], "tokenTtl": "2h", "tokenMaxTtl": "1h"}}},
     "tenants.team-a.tokenTtl = \"2h\": is longer than tokenMaxTtl"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"], "typo": 1}}}, "tenants.team-a.typo = 1: is not a setting"),
    ({"policies": {"ci": {"secret/data/x": ["read", "root"]}}}, "policies.ci.secret/data/x = \"root\": is not an OpenBao capability"),
    ({"policies": {"ci": {"secret/data/x": ["deny", "read"]}}}, "combines deny with other capabilities"),
    ({"policies": {"Bad_Name": {"secret/data/x": ["read"]}}}, "policies.Bad_Name = \"Bad_Name\": is not a policy name"),
    ({"policies": {"ci": {"sys/raw/*": ["read"]}}}, "is under sys/"),
    ({"configuration": {"schedule": "often"}}, "configuration.schedule = \"often\": is not a five-field cron"),
    ({"secretEngines": {"kv": {"type": "kv-v1"}}}, "secretEngines.kv.type = \"kv-v1\": is not a supported secrets engine type"),
    ({"secretEngines": {"kv": {}}}, "secretEngines.kv.type = null: is not a supported"),
    ({"secretEngines": {"Team_KV": {"type": "kv-v2"}}}, "secretEngines.Team_KV = \"Team_KV\": is not a mount name"),
    ({"secretEngines": {"pki": {"type": "pki", "maxVersions": 3}}},
     "secretEngines.pki.maxVersions = 3: applies to kv-v2 mounts only"),
    ({"secretEngines": {"kv": {"type": "kv-v2", "maxVersions": -1}}}, "secretEngines.kv.maxVersions = -1: must be an integer"),
    ({"secretEngines": {"kv": {"type": "kv-v2", "casRequired": "yes"}}}, "secretEngines.kv.casRequired = \"yes\": must be true or false"),
    ({"secretEngines": {"pki": {"type": "pki", "maxLeaseTtl": "100000h"}}}, "secretEngines.pki.maxLeaseTtl = \"100000h\": is outside"),
    ({"secretEngines": {"pki": {"type": "pki", "defaultLeaseTtl": "2h", "maxLeaseTtl": "1h"}}},
     "secretEngines.pki.defaultLeaseTtl = \"2h\": is longer than maxLeaseTtl"),
    ({"secretEngines": {"kv": {"type": "kv-v2", "description": "two\nlines"}}}, "must be one line of text"),
    ({"secretEngines": {"kv": {"type": "kv-v2", "mountPath": "kv"}}}, "secretEngines.kv.mountPath = \"kv\": is not a setting"),
    ({"secretEngines": ["kv"]}, "secretEngines = [\"kv\"]: must be a mapping"),
    ({"configuration": {"scheduel": "x"}}, "configuration.scheduel = \"x\": is not a setting"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"]}}, "network": {"clientNamespaces": ["team-a"]}},
     "network.clientNamespaces = [\"team-a\"]: lists tenant namespaces"),
    ({"tenants": {"team-a": {"serviceAccounts": ["app"]}}, "selfInit": {"enabled": False}, "backup": {"enabled": False}},
     "tenants = [\"team-a\"]: the reconciler logs in with the kubernetes auth role that self-init creates"),
])
def test_bad_declared_configuration_fails_before_any_resource(raw: dict[str, Any], expected: str) -> None:
    found = problems(**raw)
    assert any(expected in p and "Fix:" in p for p in found), found


# --- the desired state ------------------------------------------------------------------------


def test_desired_state_is_one_file_per_object() -> None:
    files = desired_state(settings(tenants=TENANTS, policies=POLICIES).configuration)
    assert sorted(files) == ["policy.shared-ci.hcl", "policy.tenant-team-a.hcl", "policy.tenant-team-b.hcl",
                             "role.tenant-team-a", "role.tenant-team-b"]
    assert files["role.tenant-team-b"].splitlines() == [
        "bound_service_account_names=api,web", "bound_service_account_namespaces=team-b",
        "token_policies=tenant-team-b,shared-ci", "token_ttl=900", "token_max_ttl=3600"]
    assert ('path "secret/data/tenants/team-a/*" {\n  capabilities = ["create", "read", "update", "patch", '
            '"delete", "list"]\n}') in files["policy.tenant-team-a.hcl"]
    assert 'path "secret/data/shared/*" {\n  capabilities = ["read", "list"]\n}' in files["policy.shared-ci.hcl"]
    engines = desired_state(settings(secretEngines=ENGINES).configuration)
    assert sorted(engines) == ["mount.orders-transit", "mount.payments-kv", "mount.web-pki"]
    assert engines["mount.payments-kv"].splitlines() == ["type=kv-v2", "description=payments team", "max_versions=5",
                                                         "cas_required=true"]
    assert engines["mount.web-pki"].splitlines() == ["type=pki", "default_lease_ttl=3600", "max_lease_ttl=2592000"]
    assert engines["mount.orders-transit"] == "type=transit\n"  # nothing else declared: nothing else enforced
    narrowed = desired_state(settings(tenants={"team-a": {"serviceAccounts": ["app"], "write": []}}).configuration)
    assert '"create"' not in narrowed["policy.tenant-team-a.hcl"] and '"read", "list"' in narrowed["policy.tenant-team-a.hcl"]


# --- the component ----------------------------------------------------------------------------


def _component_run(s):
    return run_components(lambda: OpenBaoConfiguration("cfg", configuration_args(s, ca_secret_name="openbao-ca")))


def test_component_objects_and_job_named_by_the_state() -> None:
    s = settings(tenants=TENANTS, policies=POLICIES)
    run = _component_run(s)
    spec = configuration_spec(configuration_args(s, "openbao-ca"))
    cm = run.object("ConfigMap", "openbao-configuration")
    assert cm["data"] == desired_state(s.configuration)
    assert "reconcile.sh" in run.object("ConfigMap", "openbao-reconcile-script")["data"]
    job = run.object("Job", job_name(spec))
    assert job_name(spec).startswith("openbao-reconcile-") and "ttlSecondsAfterFinished" not in job["spec"]
    (reg,) = [r for r in run.registrations if r.type == "kubernetes:batch/v1:Job"]
    assert reg.options["customTimeouts"] == {"create": JOB_TIMEOUTS.create, "update": JOB_TIMEOUTS.update,
                                             "delete": JOB_TIMEOUTS.delete}
    cron = run.object("CronJob", "openbao-reconcile")
    assert cron["spec"]["schedule"] == "*/30 * * * *" and cron["spec"]["concurrencyPolicy"] == "Forbid"
    for pod in (job["spec"]["template"], cron["spec"]["jobTemplate"]["spec"]["template"]):
        p = pod["spec"]
        assert p["serviceAccountName"] == "openbao-reconciler" and p["automountServiceAccountToken"] is False
        assert pod["metadata"]["labels"].items() >= reconciler_labels(s).items()
        (c,) = p["containers"]
        assert c["terminationMessagePolicy"] == "FallbackToLogsOnError"
        assert c["securityContext"]["readOnlyRootFilesystem"] and c["securityContext"]["allowPrivilegeEscalation"] is False
        assert p["securityContext"]["runAsNonRoot"]
        env = {e["name"]: e["value"] for e in c["env"]}
        assert env["RECONCILE_ROLE"] == "reconciler" and env["BAO_ADDR"] == "https://openbao-active.openbao.svc:8200"
        assert {v["name"]: v for v in p["volumes"]}["ca"]["secret"]["secretName"] == "openbao-ca"
    assert run.object("ServiceAccount", "openbao-reconciler")["automountServiceAccountToken"] is False


def test_any_change_of_the_state_or_the_pod_is_a_new_job_name() -> None:
    def name(**raw: Any) -> str:
        s = settings(**raw)
        return job_name(configuration_spec(configuration_args(s, "openbao-ca")))

    base = name(tenants=TENANTS, policies=POLICIES)
    assert base == name(tenants=TENANTS, policies=POLICIES)  # stable
    assert base != name(tenants={**TENANTS, "team-c": {"serviceAccounts": ["app"]}}, policies=POLICIES)
    assert base != name(tenants=TENANTS, policies={"ci": {"secret/data/shared/*": ["read"]}})
    assert base != name(tenants=TENANTS, policies=POLICIES, image={"tag": "2.7.3"})
    assert base == name(tenants=TENANTS, policies=POLICIES, configuration={"schedule": "*/5 * * * *"})  # CronJob only


def test_component_args_are_validated_with_the_stack_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"name": "openbao", "namespace": "openbao", "ca_secret_name": "openbao-ca",
            "tenants": [{"namespace": "team-a", "service_accounts": ["*"], "read": ["sys/*"]}],
            "policies": [{"name": "ci", "rules": [{"path": "secret/data/x", "capabilities": ["root"]}]}]}
    text = rejected_args(lambda: OpenBaoConfiguration("cfg", args), monkeypatch,
                         "OpenBaoConfigurationArgs.tenants.team-a.service_accounts = \"*\"")
    assert "OpenBaoConfigurationArgs.tenants.team-a.read = \"sys/*\": is under sys/" in text
    assert "is not an OpenBao capability" in text
    engines = {**args, "tenants": [], "policies": [], "secret_engines": [{"name": "kv", "type": "kv-v1"}]}
    rejected_args(lambda: OpenBaoConfiguration("cfg", engines), monkeypatch,
                  "OpenBaoConfigurationArgs.secret_engines.kv.type = \"kv-v1\": is not a supported secrets engine type")


# --- the platform: self-init, network, wiring -------------------------------------------------


def test_self_init_creates_the_reconciler_role_with_a_narrow_policy() -> None:
    s = settings()
    spec = cluster_spec(cluster_args(s, "openbao-tls", "openbao-unseal", "openbao-init"))
    init = json.dumps(initialize_config(spec))
    assert '"auth/kubernetes/role/reconciler"' in init and '"openbao-reconciler"' in init
    policy = json.loads(reconciler_policy("secret"))["path"]
    assert policy == {"sys/policies/acl/tenant-*": {"capabilities": ["create", "read", "update", "delete"]},
                      "sys/policies/acl/shared-*": {"capabilities": ["create", "read", "update", "delete"]},
                      "auth/kubernetes/role/tenant-*": {"capabilities": ["create", "read", "update", "delete"]},
                      # mounts under apps/: enable, read, tune, KV config; never delete (disable)
                      "sys/mounts/apps/*": {"capabilities": ["create", "read", "update"]},
                      "apps/+/config": {"capabilities": ["create", "read", "update"]},
                      "secret/data/openbao-platform/reconciler": {"capabilities": ["create", "read", "update"]}}
    assert not any("sudo" in v["capabilities"] for v in policy.values())
    off = cluster_spec({**cluster_args(s, "t", "u", "i"), "reconciler_auth_role": False})
    assert "reconciler" not in json.dumps(initialize_config(off))


def test_tenants_reach_the_api_and_the_reconciler_only_dns_and_openbao() -> None:
    s = settings(tenants=TENANTS, policies=POLICIES, network={"clientNamespaces": ["reports"]})
    spec = network_spec(network_args(s))
    assert set(spec.network.client_namespaces) == {"reports", "team-a", "team-b"}
    c = Cluster({n: {} for n in ["openbao", "team-a", "team-b", "reports", "team-z", "kube-system"]},
                list(network_policies(spec).values()))
    bao = Pod("openbao", spec.selector_labels, ip="10.1.0.1")
    reconciler = Pod("openbao", reconciler_labels(s))
    for ns in ("team-a", "team-b", "reports"):
        assert c.allowed(Pod(ns, {"app": "x"}), bao, 8200), ns
    assert not c.allowed(Pod("team-z", {}), bao, 8200)
    assert c.allowed(reconciler, bao, 8200)
    assert not c.allowed(reconciler, bao, 8201)
    assert c.allowed(reconciler, Pod("kube-system", {"k8s-app": "kube-dns"}), 53, "UDP")
    assert not c.allowed(reconciler, External("10.96.0.1"), 443)  # no Kubernetes API
    assert not c.allowed(Pod("team-a", {}), reconciler, 8200)  # nothing reaches it


def test_the_stack_deploys_the_configuration_after_the_cluster(prod_run) -> None:
    # the Job waits for the StatefulSet (awaited until every replica is Ready): a serving leader
    (job,) = [r for r in prod_run.registrations if r.type == "kubernetes:batch/v1:Job"]
    (sts,) = [r for r in prod_run.registrations if r.type == "kubernetes:apps/v1:StatefulSet"]
    assert sts.urn in job.options["dependsOn"], job.options["dependsOn"]
    jobs = [r for r in prod_run.kubernetes_objects() if r.plain_props.get("kind") == "Job"]
    assert len(jobs) == 1 and prod_run.object("ConfigMap", "openbao-configuration")["data"] in ({}, None)
