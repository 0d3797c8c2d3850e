"""Every rule, through the Analyzer protocol: a violation it reports (mandatory), a near miss it passes.

Each case starts from the compliant production stack (policy_stack.py), changes one thing,
and runs what the engine runs in a preview (Analyze per resource, then AnalyzeStack). A
violating case must be reported by its rule, at mandatory level, with a message naming the
object and field, attached to the right resource, and by no rule outside ``also``. A
passing case must produce no diagnostic at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence, Union

import pytest

from tests.policy.conftest import PRODUCTION
from tests.policy.policy_harness import PolicyAnalyzer, urn
from tests.policy.policy_stack import BACKUP_LABELS, IMAGE, NS, SELECTOR, SERVER_LABELS, Stack, baseline, pem_material, resources

Path = Union[str, Sequence[Any]]
Mutation = Callable[[Stack], None]

STS_POD = "props.spec.template.spec"
SERVER = f"{STS_POD}.containers.0"
INIT = f"{STS_POD}.initContainers.0"
JOB_POD = "props.spec.jobTemplate.spec.template.spec"
JOB = f"{JOB_POD}.containers.0"
NGINX = "nginx.ingress.kubernetes.io/"


# --------------------------------------------------------------------------------------
# Mutation helpers
# --------------------------------------------------------------------------------------


def _steps(path: Path) -> list[Any]:
    if isinstance(path, str):
        return [int(p) if p.isdigit() else p for p in path.split(".")]
    return list(path)


def _parent(node: Any, steps: list[Any]) -> Any:
    for step in steps[:-1]:
        if isinstance(node, dict) and step not in node:
            node[step] = {}
        node = node[step]
    return node


def setp(handle: str, path: Path, value: Any) -> Mutation:
    """Set a nested field of one resource."""
    def mutate(stack: Stack) -> None:
        steps = _steps(path)
        _parent(stack[handle], steps)[steps[-1]] = value
    return mutate


def delp(handle: str, path: Path) -> Mutation:
    """Remove a nested field of one resource."""
    def mutate(stack: Stack) -> None:
        steps = _steps(path)
        del _parent(stack[handle], steps)[steps[-1]]
    return mutate


def appendp(handle: str, path: Path, value: Any) -> Mutation:
    """Append to a nested list of one resource."""
    def mutate(stack: Stack) -> None:
        steps = _steps(path)
        _parent(stack[handle], steps)[steps[-1]].append(value)
    return mutate


def drop(handle: str) -> Mutation:
    def mutate(stack: Stack) -> None:
        del stack[handle]
    return mutate


def add(handle: str, resource: dict[str, Any]) -> Mutation:
    def mutate(stack: Stack) -> None:
        stack[handle] = json.loads(json.dumps(resource))
    return mutate


def server_config(edit: Callable[[dict[str, Any]], None], handle: str = "config", key: str = "server.json") -> Mutation:
    """Edit the OpenBao server config JSON inside the ConfigMap."""
    def mutate(stack: Stack) -> None:
        data = stack[handle]["props"]["data"]
        config = json.loads(data[key])
        edit(config)
        data[key] = json.dumps(config)
    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(stack: Stack) -> None:
        for m in mutations:
            m(stack)
    return mutate


def listener(**changes: Any) -> Mutation:
    return server_config(lambda c: c["listener"][0]["tcp"].update(changes))


def retry_join(index: int, **changes: Any) -> Mutation:
    def edit(c: dict[str, Any]) -> None:
        join = c["storage"]["raft"]["retry_join"][index]
        for k, v in changes.items():
            if v is None:
                join.pop(k, None)
            else:
                join[k] = v
    return server_config(edit)


def seal(**changes: Any) -> Mutation:
    return server_config(lambda c: c["seal"]["static"].update(changes))


def configmap(handle: str, name: str, data: dict[str, Any], field_name: str = "data") -> Mutation:
    return add(handle, {"type": "kubernetes:core/v1:ConfigMap", "name": name, "props": {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": NS}, field_name: data}})


def role(name: str, rules: list[dict[str, Any]], kind: str = "Role") -> Mutation:
    meta = {"name": name} if kind == "ClusterRole" else {"name": name, "namespace": NS}
    return add(f"extra_{name}", {"type": f"kubernetes:rbac.authorization.k8s.io/v1:{kind}", "name": f"r-{name}",
                                 "props": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind,
                                           "metadata": meta, "rules": rules}})


def binding(name: str, role_kind: str, role_name: str, subjects: list[dict[str, Any]],
            kind: str = "RoleBinding") -> Mutation:
    meta = {"name": name} if kind == "ClusterRoleBinding" else {"name": name, "namespace": NS}
    return add(f"extra_{name}", {"type": f"kubernetes:rbac.authorization.k8s.io/v1:{kind}", "name": f"b-{name}",
                                 "props": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta,
                                           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind,
                                                       "name": role_name},
                                           "subjects": subjects}})


def sa_subject(name: str) -> dict[str, Any]:
    return {"kind": "ServiceAccount", "name": name, "namespace": NS}


def workload(kind: str, name: str, pod_spec: dict[str, Any], labels: Mapping[str, str] = BACKUP_LABELS) -> Mutation:
    """Add a workload of any kind around a pod spec."""
    api = {"Pod": "core/v1", "Job": "batch/v1"}.get(kind, "apps/v1")
    meta = {"name": name, "namespace": NS, "labels": dict(labels)}
    template = {"metadata": {"labels": dict(labels)}, "spec": pod_spec}
    spec: dict[str, Any] = pod_spec if kind == "Pod" else {"template": template}
    if kind in ("Deployment", "DaemonSet"):
        spec["selector"] = {"matchLabels": dict(labels)}
    return add(f"extra_{name}", {"type": f"kubernetes:{api}:{kind}", "name": f"w-{name}",
                                 "props": {"apiVersion": api.replace("core/", ""), "kind": kind, "metadata": meta,
                                           "spec": spec}})


def hardened_pod(**changes: Any) -> dict[str, Any]:
    """A pod spec that passes every pod rule, with top-level changes."""
    spec = json.loads(json.dumps(baseline()["cronjob"]["props"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]))
    spec["serviceAccountName"] = "reporter"
    spec["automountServiceAccountToken"] = False
    spec.update(changes)
    return spec


def netpol(name: str, spec: dict[str, Any]) -> Mutation:
    return add(f"extra_np_{name}", {"type": "kubernetes:networking.k8s.io/v1:NetworkPolicy", "name": f"np-{name}",
                                    "props": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                                              "metadata": {"name": name, "namespace": NS}, "spec": spec}})


def ingress_for(service: str, port: int, annotations: dict[str, str] | None = None) -> Mutation:
    return add("extra_ingress", {"type": "kubernetes:networking.k8s.io/v1:Ingress", "name": "other-ingress", "props": {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": service, "namespace": NS, "annotations": annotations or {}},
        "spec": {"rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {
            "service": {"name": service, "port": {"number": port}}}}]}}]}}})


# --------------------------------------------------------------------------------------
# Cases
# --------------------------------------------------------------------------------------


# ---- the declared OpenBao configuration (OpenBaoConfiguration's desired-state ConfigMap) ----
TENANT_A = ('# tenant team-a\npath "secret/data/tenants/team-a/*" {\n  capabilities = ["create", "read", "update", '
            '"patch", "delete", "list"]\n}\npath "secret/metadata/tenants/team-a/*" {\n  capabilities = ["read", "list"]\n}\n')
ROLE_A = ("bound_service_account_names=app\nbound_service_account_namespaces=team-a\n"
          "token_policies=tenant-team-a\ntoken_ttl=3600\ntoken_max_ttl=14400\n")


def declared(**items: str) -> Mutation:
    """The desired-state ConfigMap with a compliant tenant, items replaced or added."""
    data = {"policy.tenant-team-a.hcl": TENANT_A, "role.tenant-team-a": ROLE_A}
    data.update({k.replace("__", "."): v for k, v in items.items()})
    return configmap("desired", "openbao-configuration", data)


def service(name: str, spec: dict[str, Any], labels: Mapping[str, str] | None = None) -> Mutation:
    """One more Service in the OpenBao namespace (handle ``extra_svc``)."""
    meta = {"name": name, "namespace": NS, "labels": dict(labels or {})}
    return add("extra_svc", {"type": "kubernetes:core/v1:Service", "name": f"{name}-svc",
                             "props": {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": spec}})


def acl(path: str, caps: str) -> str:
    return f'path "{path}" {{\n  capabilities = [{caps}]\n}}\n'


@dataclass(frozen=True)
class Fails:
    """A stack change that ``rule`` must report, at mandatory level."""

    rule: str
    id: str
    mutate: Mutation
    expect: tuple[str, ...]
    on: str = ""  # handle of the resource the violation is attached to ("" = the mutated one)
    also: tuple[str, ...] = ()  # other rules that legitimately fire on the same change
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Passes:
    """A near miss that no rule may report."""

    rule: str
    id: str
    mutate: Mutation
    config: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


CA_PEM, KEY_PEM = pem_material()
B64_KEY = "q3Vw5Zk1R0f8mD2Yx7LhT9bNcJ4sPa6WeUo+GiKr1Hs="  # 32 random bytes, base64
HEX_KEY = "9f2c4e6a8b0d1f3e5c7a9b1d3f5e7c9a0b2d4f6e8a1c3e5b7d9f0a2c4e6b8d0f"
DIGEST = "sha256:" + "ab" * 32

FAILS: list[Fails] = [
    # ---- OpenBao server options ---------------------------------------------------------
    Fails("openbao-server-hardening", "raw-storage-endpoint", server_config(lambda c: c.update(raw_storage_endpoint=True)),
          ("ConfigMap openbao/openbao-config", "data[server.json] sets raw_storage_endpoint")),
    Fails("openbao-server-hardening", "api-audit-creation-string",
          server_config(lambda c: c.update(unsafe_allow_api_audit_creation="true")),
          ("unsafe_allow_api_audit_creation", "declarative")),
    # ---- OpenBao's own RBAC, as declared ------------------------------------------------
    Fails("openbao-acl-least-privilege", "sudo", declared(**{"policy__shared-ops.hcl": acl("secret/data/ops/*", '"read", "sudo"')}),
          ("ConfigMap openbao/openbao-configuration", "data[policy.shared-ops.hcl] grants sudo")),
    Fails("openbao-acl-least-privilege", "sys-path", declared(**{"policy__shared-ops.hcl": acl("sys/policies/acl/*", '"read"')}),
          ("data[policy.shared-ops.hcl]", "\"sys/policies/acl/*\"", "sys/, auth/")),
    Fails("openbao-acl-least-privilege", "auth-path", declared(**{"policy__tenant-team-a.hcl": acl("auth/token/create", '"update"')}),
          ("\"auth/token/create\"",)),
    Fails("openbao-acl-least-privilege", "leading-wildcard", declared(**{"policy__shared-all.hcl": acl("*", '"read"')}),
          ("\"*\"", "sys/, auth/")),
    Fails("openbao-acl-least-privilege", "other-tenant", declared(**{"policy__tenant-team-a.hcl": TENANT_A + acl(
              "secret/data/tenants/team-b/*", '"read"')}),
          ("tenant team-a", "tenant team-b's subtree")),
    Fails("openbao-auth-role-bound", "wildcard-service-account",
          declared(**{"role__tenant-team-a": ROLE_A.replace("names=app", "names=*")}),
          ("data[role.tenant-team-a] bound_service_account_names", "wildcard")),
    Fails("openbao-auth-role-bound", "wildcard-namespace",
          declared(**{"role__tenant-team-a": ROLE_A.replace("namespaces=team-a", "namespaces=team-*")}),
          ("bound_service_account_namespaces",)),
    Fails("openbao-token-ttl-bounds", "ttl-too-long",
          declared(**{"role__tenant-team-a": ROLE_A.replace("token_max_ttl=14400", "token_max_ttl=604800")}),
          ("token_max_ttl is 604800s, outside 1-86400s",)),
    Fails("openbao-token-ttl-bounds", "below-configured-bound", declared(), ("token_max_ttl is 14400s, outside 1-7200s",),
          config={"openbao-token-ttl-bounds": {"maxTokenTtlSeconds": 7200}}),
    Fails("openbao-token-ttl-bounds", "ttl-above-max",
          declared(**{"role__tenant-team-a": ROLE_A.replace("token_ttl=3600", "token_ttl=20000")}),
          ("token_ttl exceeds token_max_ttl",)),
    # ---- TLS: listener -----------------------------------------------------------------
    Fails("openbao-listener-tls", "tls_disable-string", listener(tls_disable="true"),
          ("ConfigMap openbao/openbao-config", "data[server.json] listener[0].tcp.tls_disable")),
    Fails("openbao-listener-tls", "tls_disable-bool-tcp-list-shape",
          server_config(lambda c: c.update(listener={"tcp": [dict(c["listener"][0]["tcp"], tls_disable=True)]})),
          ("listener[0].tcp.tls_disable",)),
    Fails("openbao-listener-tls", "empty-cert-means-acme", listener(tls_cert_file=""), ("tls_cert_file", "ACME")),
    Fails("openbao-listener-tls", "missing-key", server_config(lambda c: c["listener"][0]["tcp"].pop("tls_key_file")),
          ("listener[0].tcp.tls_key_file is missing",)),
    Fails("openbao-listener-tls", "tls11", listener(tls_min_version="tls11"), ("tls_min_version is \"tls11\"",)),
    Fails("openbao-listener-tls", "tls12-below-configured-tls13", lambda s: None, ("below the required tls13",),
          on="config", config={"openbao-listener-tls": {"minTlsVersion": "tls13"}}),
    Fails("openbao-listener-tls", "http-api-addr", server_config(lambda c: c.update(api_addr="http://x:8200")),
          ("api_addr is \"http://x:8200\"",)),
    Fails("openbao-listener-tls", "hcl-config-unverifiable",
          setp("config", ("props", "data", "server.hcl"), 'listener "tcp" {\n  tls_disable = 1\n}\n'),
          ("data[server.hcl] holds OpenBao config as HCL",)),
    Fails("openbao-listener-tls", "config-in-secret",
          setp("tls_secret", "props.stringData", {"server.json": json.dumps({"listener": {"tcp": {"tls_disable": 1}}})}),
          ("Secret openbao/openbao-tls", "stringData[server.json] listener[0].tcp.tls_disable"), on="tls_secret"),
    Fails("openbao-listener-tls", "config-in-env",
          appendp("statefulset", f"{SERVER}.env",
                  {"name": "BAO_LOCAL_CONFIG", "value": json.dumps({"listener": [{"tcp": {"tls_disable": "true"}}]})}),
          ("StatefulSet openbao/openbao", "env[BAO_LOCAL_CONFIG] listener[0].tcp.tls_disable"), on="statefulset"),
    # ---- TLS: raft join ----------------------------------------------------------------
    Fails("openbao-raft-join-tls", "http-leader", retry_join(1, leader_api_addr="http://openbao-1:8200"),
          ("storage.raft.retry_join[1].leader_api_addr",)),
    Fails("openbao-raft-join-tls", "no-ca", retry_join(2, leader_ca_cert_file=None),
          ("storage.raft.retry_join[2] names no CA",)),
    # ---- TLS: probes and clients -------------------------------------------------------
    Fails("openbao-probes-https", "http-scheme", setp("statefulset", f"{SERVER}.readinessProbe.httpGet.scheme", "HTTP"),
          ("containers[openbao].readinessProbe.httpGet.scheme is \"HTTP\"",)),
    Fails("openbao-probes-https", "scheme-defaults-to-http", delp("statefulset", f"{SERVER}.readinessProbe.httpGet.scheme"),
          ("readinessProbe.httpGet.scheme",)),
    Fails("openbao-probes-https", "exec-skip-verify",
          setp("statefulset", f"{SERVER}.livenessProbe.exec.command", ["bao", "status", "-tls-skip-verify"]),
          ("livenessProbe.exec.command skips certificate verification",)),
    Fails("openbao-probes-https", "client-skip-verify-env",
          appendp("cronjob", f"{JOB}.env", {"name": "BAO_SKIP_VERIFY", "value": "true"}),
          ("CronJob openbao/openbao-backup", "env[BAO_SKIP_VERIFY]"), on="cronjob"),
    # ---- TLS: keys and certificates ----------------------------------------------------
    Fails("tls-key-strength", "rsa-2048", setp("server_key", "props.rsaBits", 2048), ("rsaBits is 2048",)),
    Fails("tls-key-strength", "rsa-default-bits", delp("server_key", "props.rsaBits"), ("provider default is 2048",)),
    Fails("tls-key-strength", "ecdsa-p224", setp("ca_key", "props.ecdsaCurve", "P224"), ("ecdsaCurve is \"P224\"",)),
    Fails("tls-key-strength", "rsa-3072-below-configured-4096", lambda s: None, ("rsaBits is 3072",),
          on="server_key", config={"tls-key-strength": {"minRsaBits": 4096}}),
    Fails("tls-cert-validity", "leaf-too-long", setp("server_cert", "props.validityPeriodHours", 10000),
          ("tls:LocallySignedCert openbao-pki-server-cert", "validityPeriodHours is 10000")),
    Fails("tls-cert-validity", "ca-too-long", setp("ca_cert", "props.validityPeriodHours", 100000),
          ("CA maximum of 87600",)),
    Fails("tls-cert-validity", "no-early-renewal", setp("server_cert", "props.earlyRenewalHours", 0),
          ("earlyRenewalHours is 0",)),
    Fails("tls-cert-validity", "renewal-window-not-below-validity", setp("server_cert", "props.earlyRenewalHours", 2160),
          ("is not below validityPeriodHours",)),
    # ---- Edge --------------------------------------------------------------------------
    Fails("openbao-ingress-backend-tls", "no-spec-tls", delp("ingress", "props.spec.tls"), ("Ingress openbao/openbao", "spec.tls")),
    Fails("openbao-ingress-backend-tls", "ssl-redirect-false",
          setp("ingress", ("props", "metadata", "annotations", NGINX + "ssl-redirect"), "false"), ("ssl-redirect",),
          also=("ingress-nginx-annotation-allowlist",),
          config={"ingress-nginx-annotation-allowlist": {"enforcementLevel": "disabled"}}),
    Fails("openbao-ingress-backend-tls", "no-backend-protocol",
          delp("ingress", ("props", "metadata", "annotations", NGINX + "backend-protocol")), ("backend-protocol",)),
    Fails("openbao-ingress-backend-tls", "verify-true-is-not-on",
          setp("ingress", ("props", "metadata", "annotations", NGINX + "proxy-ssl-verify"), "true"),
          ("proxy-ssl-verify is \"true\"",)),
    Fails("openbao-ingress-backend-tls", "ca-secret-other-namespace",
          setp("ingress", ("props", "metadata", "annotations", NGINX + "proxy-ssl-secret"), "ingress-nginx/openbao-ca"),
          ("proxy-ssl-secret is \"ingress-nginx/openbao-ca\"",)),
    Fails("openbao-ingress-backend-tls", "no-proxy-ssl-name",
          delp("ingress", ("props", "metadata", "annotations", NGINX + "proxy-ssl-name")), ("proxy-ssl-name",)),
    Fails("openbao-ingress-backend-tls", "recognised-by-port", ingress_for("vault-api", 8200), ("Ingress openbao/vault-api",),
          on="extra_ingress"),
    Fails("openbao-service-exposure", "load-balancer", setp("svc", "props.spec.type", "LoadBalancer"),
          ("Service openbao/openbao", "spec.type is LoadBalancer", "ingress.mode")),
    Fails("openbao-service-exposure", "node-port-found-by-selector",
          service("bao-debug", {"type": "NodePort", "selector": SERVER_LABELS, "ports": [{"port": 8200}]}),
          ("Service openbao/bao-debug", "spec.type is NodePort"), on="extra_svc"),
    Fails("openbao-service-exposure", "external-ips", setp("svc", "props.spec.externalIPs", ["203.0.113.7"]),
          ("spec.externalIPs",)),
    Fails("openbao-service-exposure", "cluster-port-on-clusterip",
          appendp("svc", "props.spec.ports", {"name": "cluster", "port": 8201, "targetPort": 8201}),
          ("spec.ports[1] carries the cluster port 8201",)),
    Fails("openbao-gateway-backend-tls", "no-backendtlspolicy", drop("backendtls"),
          ("HTTPRoute openbao/openbao", "spec.rules[0].backendRefs[0]", "openbao/openbao-active"), on="httproute"),
    Fails("openbao-gateway-backend-tls", "policy-without-hostname",
          delp("backendtls", "props.spec.validation.hostname"), ("BackendTLSPolicy openbao/openbao-active", "hostname")),
    Fails("openbao-gateway-backend-tls", "policy-without-ca",
          delp("backendtls", "props.spec.validation.caCertificateRefs"), ("names no CA",)),
    Fails("ingress-no-snippet-annotations", "configuration-snippet",
          setp("ingress", ("props", "metadata", "annotations", NGINX + "configuration-snippet"), "more_set_headers x;"),
          (NGINX + "configuration-snippet",)),
    Fails("ingress-no-snippet-annotations", "auth-snippet-on-any-ingress",
          ingress_for("grafana", 3000, {NGINX + "auth-snippet": "return 200;"}), ("auth-snippet",), on="extra_ingress"),
    Fails("ingress-nginx-annotation-allowlist", "rewrite-target",
          setp("ingress", ("props", "metadata", "annotations", NGINX + "rewrite-target"), "/$2"),
          (NGINX + "rewrite-target is not in the allow-list",)),
    # ---- RBAC --------------------------------------------------------------------------
    Fails("rbac-no-wildcards", "verbs-in-second-rule",
          appendp("role", "props.rules", {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["*"]}),
          ("Role openbao/openbao", "rules[1].verbs contains \"*\"")),
    Fails("rbac-no-wildcards", "resources", role("wide", [{"apiGroups": ["apps"], "resources": ["*"], "verbs": ["get"]}]),
          ("rules[0].resources",), on="extra_wide"),
    Fails("rbac-no-wildcards", "apigroups-clusterrole",
          role("any-group", [{"apiGroups": ["*"], "resources": ["pods"], "verbs": ["get"]}], kind="ClusterRole"),
          ("ClusterRole any-group", "rules[0].apiGroups"), on="extra_any-group"),
    Fails("rbac-no-privilege-escalation", "escalate", role("esc", [{"apiGroups": ["rbac.authorization.k8s.io"],
                                                                    "resources": ["roles"], "verbs": ["escalate"]}]),
          ("rules[0].verbs contains \"escalate\"",), on="extra_esc"),
    Fails("rbac-no-privilege-escalation", "impersonate", role("imp", [{"apiGroups": [""], "resources": ["users"],
                                                                       "verbs": ["impersonate"]}]),
          ("impersonate",), on="extra_imp"),
    Fails("rbac-no-privilege-escalation", "token-create",
          appendp("role", "props.rules", {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["create"]}),
          ("rules[1] grants create on serviceaccounts/token",)),
    Fails("rbac-no-privilege-escalation", "pods-exec-get",
          appendp("role", "props.rules", {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["get"]}),
          ("pods/exec",)),
    Fails("rbac-no-privilege-escalation", "nodes-proxy",
          role("nodes", [{"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]}], kind="ClusterRole"),
          ("nodes/proxy",), on="extra_nodes"),
    Fails("rbac-no-workload-secret-read", "role-reads-secrets",
          appendp("role", "props.rules", {"apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]}),
          ("RoleBinding openbao/openbao", "openbao/openbao", "secrets"), on="rolebinding"),
    Fails("rbac-no-workload-secret-read", "bound-to-builtin-edit",
          binding("edit", "ClusterRole", "edit", [sa_subject("openbao-backup")]),
          ("ClusterRole edit includes reading Secrets",), on="extra_edit"),
    Fails("rbac-no-privileged-bindings", "cluster-admin",
          binding("admin", "ClusterRole", "cluster-admin", [sa_subject("openbao")]),
          ("roleRef is ClusterRole cluster-admin",), on="extra_admin", also=("rbac-no-workload-secret-read",)),
    Fails("rbac-no-privileged-bindings", "system-masters",
          binding("masters", "Role", "openbao", [{"kind": "Group", "name": "system:masters"}]),
          ("subjects[0] is Group system:masters",), on="extra_masters"),
    Fails("rbac-no-privileged-bindings", "unauthenticated",
          binding("anon", "Role", "openbao", [{"kind": "Group", "name": "system:unauthenticated"}]),
          ("system:unauthenticated",), on="extra_anon"),
    Fails("rbac-no-default-serviceaccount", "default-sa",
          appendp("rolebinding", "props.subjects", sa_subject("default")), ("subjects[1] is ServiceAccount \"default\"",)),
    Fails("rbac-clusterrolebinding-allowlist", "view",
          binding("viewer", "ClusterRole", "view", [sa_subject("openbao")], kind="ClusterRoleBinding"),
          ("ClusterRoleBinding viewer", "roleRef ClusterRole \"view\" is not in allowedClusterRoles"), on="extra_viewer"),
    Fails("serviceaccount-token-automount", "pod-without-api-need",
          workload("Deployment", "reporter", hardened_pod(automountServiceAccountToken=True)),
          ("Deployment openbao/reporter", "automountServiceAccountToken is true", "\"reporter\""), on="extra_reporter"),
    Fails("serviceaccount-token-automount", "default-sa-pod-unset",
          workload("Job", "migrate", {k: v for k, v in hardened_pod().items()
                                      if k not in ("serviceAccountName", "automountServiceAccountToken")}),
          ("Job openbao/migrate", "\"default\""), on="extra_migrate"),
    Fails("serviceaccount-token-automount", "serviceaccount-object",
          setp("sa_admin", "props.automountServiceAccountToken", True), ("ServiceAccount openbao/openbao-admin",)),
    # ---- Network -----------------------------------------------------------------------
    Fails("network-default-deny", "missing", drop("np_deny"),
          ("namespace openbao", "Ingress and Egress"), on="statefulset"),
    Fails("network-default-deny", "ingress-only", setp("np_deny", "props.spec.policyTypes", ["Ingress"]),
          ("for Egress",), on="statefulset"),
    Fails("network-default-deny", "deny-with-a-rule", setp("np_deny", "props.spec.ingress", [{}]),
          ("for Ingress",), on="statefulset",
          also=("network-openbao-ports",)),
    Fails("network-openbao-ports", "api-from-every-namespace",
          setp("np_api", "props.spec.ingress.0.from.1.namespaceSelector", {}),
          ("NetworkPolicy openbao/openbao-api", "spec.ingress[0]", "port 8200", "namespaceSelector is {}")),
    Fails("network-openbao-ports", "api-without-from", delp("np_api", "props.spec.ingress.0.from"),
          ("has no `from`",)),
    Fails("network-openbao-ports", "api-from-anywhere",
          appendp("np_api", "props.spec.ingress.0.from", {"ipBlock": {"cidr": "0.0.0.0/0"}}), ("0.0.0.0/0",)),
    Fails("network-openbao-ports", "cluster-port-from-backup-pods",
          setp("np_cluster", "props.spec.ingress.0.from.0.podSelector.matchLabels", SELECTOR),
          ("cluster port 8201", "CronJob openbao/openbao-backup")),
    Fails("network-openbao-ports", "named-cluster-port-from-other-namespace",
          appendp("np_cluster", "props.spec.ingress.0.from",
                  {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}}),
          ("cluster port 8201", "namespaceSelector",)),
    # ---- Pods --------------------------------------------------------------------------
    Fails("pod-security-restricted", "run-as-non-root-false",
          setp("statefulset", f"{SERVER}.securityContext.runAsNonRoot", False),
          ("containers[openbao].securityContext.runAsNonRoot is false",)),
    Fails("pod-security-restricted", "pod-run-as-uid-0", setp("statefulset", f"{STS_POD}.securityContext.runAsUser", 0),
          ("initContainers[wait-for-tls].securityContext.runAsUser is 0",)),
    Fails("pod-security-restricted", "init-container-escalation",
          delp("statefulset", f"{INIT}.securityContext.allowPrivilegeEscalation"),
          ("initContainers[wait-for-tls].securityContext.allowPrivilegeEscalation",)),
    Fails("pod-security-restricted", "ipc-lock", setp("statefulset", f"{SERVER}.securityContext.capabilities.add", ["IPC_LOCK"]),
          ("capabilities.add is [\"IPC_LOCK\"]",)),
    Fails("pod-security-restricted", "no-drop-all", setp("cronjob", f"{JOB}.securityContext.capabilities.drop", ["NET_RAW"]),
          ("CronJob openbao/openbao-backup", "capabilities.drop is [\"NET_RAW\"]")),
    Fails("pod-security-restricted", "seccomp-unconfined",
          setp("statefulset", f"{STS_POD}.securityContext.seccompProfile.type", "Unconfined"),
          ("seccompProfile.type is \"Unconfined\"",)),
    Fails("pod-security-restricted", "privileged", setp("statefulset", f"{SERVER}.securityContext.privileged", True),
          ("privileged is true",)),
    Fails("pod-readonly-root-filesystem", "init-container",
          setp("statefulset", f"{INIT}.securityContext.readOnlyRootFilesystem", False),
          ("initContainers[wait-for-tls].securityContext.readOnlyRootFilesystem is false",)),
    Fails("pod-no-host-access", "host-path",
          appendp("statefulset", f"{STS_POD}.volumes", {"name": "docker", "hostPath": {"path": "/var/run"}}),
          ("volumes[docker] is a hostPath volume",)),
    Fails("pod-no-host-access", "host-network-daemonset", workload("DaemonSet", "agent", hardened_pod(hostNetwork=True)),
          ("DaemonSet openbao/agent", "hostNetwork is true"), on="extra_agent"),
    Fails("pod-no-host-access", "host-pid-ipc-pod", workload("Pod", "debug", hardened_pod(hostPID=True, hostIPC=True)),
          ("Pod openbao/debug", "spec.hostPID is true"), on="extra_debug"),
    Fails("pod-no-host-access", "host-port", setp("statefulset", f"{SERVER}.ports.0.hostPort", 8200), ("hostPort 8200",)),
    Fails("pod-resource-limits", "no-memory-limit", delp("cronjob", f"{JOB}.resources.limits.memory"),
          ("containers[snapshot].resources lacks limits.memory",)),
    Fails("pod-resource-limits", "init-no-requests", delp("statefulset", f"{INIT}.resources.requests"),
          ("initContainers[wait-for-tls].resources lacks requests.cpu, requests.memory",)),
    Fails("pod-image-pinned", "latest", setp("statefulset", f"{SERVER}.image", "quay.io/openbao/openbao:latest"),
          ("containers[openbao].image is \"quay.io/openbao/openbao:latest\"", "latest")),
    Fails("pod-image-pinned", "untagged-registry-port",
          setp("cronjob", f"{JOB}.image", "registry.local:5000/openbao/openbao"), ("untagged",)),
    Fails("pod-image-pinned", "digest-required", lambda s: None, ("requireDigest",), on="statefulset",
          also=(), config={"pod-image-pinned": {"requireDigest": True}}),
    Fails("pod-secrets-as-files", "secret-key-ref",
          appendp("statefulset", f"{SERVER}.env", {"name": "TOKEN", "valueFrom": {
              "secretKeyRef": {"name": "openbao-init", "key": "admin-password"}}}),
          ("containers[openbao].env[TOKEN] reads Secret \"openbao-init\"",)),
    Fails("pod-secrets-as-files", "env-from-secret", setp("cronjob", f"{JOB}.envFrom", [{"secretRef": {"name": "creds"}}]),
          ("envFrom loads Secret \"creds\"",)),
    # ---- HA ----------------------------------------------------------------------------
    Fails("ha-raft-replicas", "even", setp("statefulset", "props.spec.replicas", 4), ("spec.replicas is 4",)),
    Fails("ha-raft-replicas", "single", setp("statefulset", "props.spec.replicas", 1), ("spec.replicas is 1",),
          also=("ha-quorum-pdb",)),
    Fails("ha-raft-replicas", "unset-means-one", delp("statefulset", "props.spec.replicas"), ("spec.replicas is 1",),
          also=("ha-quorum-pdb",)),
    Fails("ha-quorum-pdb", "missing", drop("pdb"), ("StatefulSet openbao/openbao", "no PodDisruptionBudget"),
          on="statefulset"),
    Fails("ha-quorum-pdb", "max-unavailable-2", setp("pdb", "props.spec.maxUnavailable", 2),
          ("PodDisruptionBudget openbao/openbao", "spec.maxUnavailable is 2", "at most 1")),
    Fails("ha-quorum-pdb", "max-unavailable-percent", setp("pdb", "props.spec.maxUnavailable", "50%"),
          ("spec.maxUnavailable is \"50%\"",)),
    Fails("ha-quorum-pdb", "min-available-1", both(delp("pdb", "props.spec.maxUnavailable"),
                                                   setp("pdb", "props.spec.minAvailable", 1)),
          ("spec.minAvailable is 1", "need 2")),
    Fails("ha-quorum-pdb", "selects-other-pods", setp("pdb", "props.spec.selector.matchLabels", BACKUP_LABELS),
          ("no PodDisruptionBudget selects its pods",), on="statefulset"),
    Fails("ha-pod-anti-affinity", "preferred-only",
          setp("statefulset", f"{STS_POD}.affinity.podAntiAffinity",
               {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": {
                   "topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": SERVER_LABELS}}}]}),
          ("requiredDuringSchedulingIgnoredDuringExecution",)),
    Fails("ha-pod-anti-affinity", "zone-key-only",
          setp("statefulset", f"{STS_POD}.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.0.topologyKey",
               "topology.kubernetes.io/zone"), ("kubernetes.io/hostname",)),
    Fails("ha-zone-spread", "missing", delp("statefulset", f"{STS_POD}.topologySpreadConstraints"),
          ("topologySpreadConstraints", "topology.kubernetes.io/zone")),
    Fails("ha-ondelete-updates", "rolling", setp("statefulset", "props.spec.updateStrategy.type", "RollingUpdate"),
          ("spec.updateStrategy.type is \"RollingUpdate\"",)),
    Fails("ha-ondelete-updates", "default-is-rolling", delp("statefulset", "props.spec.updateStrategy"),
          ("\"RollingUpdate\"",)),
    # ---- Secrets -----------------------------------------------------------------------
    Fails("unseal-key-protected", "inline-current-key", seal(current_key=B64_KEY),
          ("data[server.json] seal[0].static.current_key is not a file:// reference",),
          also=("configmap-no-credentials",)),
    Fails("unseal-key-protected", "env-previous-key-list-shape",
          server_config(lambda c: c.update(seal=[{"static": [dict(c["seal"]["static"], previous_key="env://OLD",
                                                                  previous_key_id="unseal-v0")]}])),
          ("seal[0].static.previous_key",)),
    Fails("unseal-key-protected", "unseal-item-in-configmap",
          configmap("cm_unseal", "unseal-keys", {"unseal-v1": "file-contents-withheld"}),
          ("ConfigMap openbao/unseal-keys", "data[unseal-v1]"), on="cm_unseal"),
    Fails("configmap-no-credentials", "pem-private-key", configmap("cm_key", "leaked", {"tls.key": KEY_PEM}),
          ("ConfigMap openbao/leaked", "data[tls.key] contains a PEM PRIVATE KEY block"), on="cm_key"),
    Fails("configmap-no-credentials", "hvs-token", configmap("cm_tok", "client", {"env": "BAO_TOKEN=hvs." + "A1b2C3d4" * 12}),
          ("OpenBao/Vault token",), on="cm_tok"),
    Fails("configmap-no-credentials", "legacy-s-token",
          setp("config", ("props", "data", "start.sh"), "bao login s.Q7fLx2Rk9ZtW4mNcVb8YpH3d\n"), ("token",)),
    Fails("configmap-no-credentials", "base64-key", configmap("cm_b64", "keys", {"key": B64_KEY}),
          ("high-entropy base64",), on="cm_b64"),
    Fails("configmap-no-credentials", "hex-key", configmap("cm_hex", "hexkey", {"seed": f"KEY={HEX_KEY}\n"}),
          ("hex string",), on="cm_hex"),
    Fails("configmap-no-credentials", "binary-data", configmap("cm_bin", "bin", {"unseal.key": B64_KEY}, "binaryData"),
          ("binaryData[unseal.key]",), on="cm_bin", also=("unseal-key-protected",)),
]

PASSES: list[Passes] = [
    Passes("openbao-server-hardening", "explicitly-off",
           server_config(lambda c: c.update(raw_storage_endpoint=False, unsafe_allow_api_audit_creation=False))),
    Passes("openbao-listener-tls", "tls13-and-explicit-false", listener(tls_min_version="tls13", tls_disable=False),
           config={"openbao-listener-tls": {"minTlsVersion": "tls13"}}),
    Passes("openbao-raft-join-tls", "inline-ca-pem", retry_join(0, leader_ca_cert_file=None, leader_ca_cert=CA_PEM)),
    Passes("openbao-probes-https", "https-probe-and-exec-with-ca", lambda s: None),
    Passes("tls-key-strength", "ed25519-and-rsa-4096", both(setp("ca_key", "props", {"algorithm": "ED25519"}),
                                                            setp("server_key", "props.rsaBits", 4096))),
    Passes("tls-cert-validity", "leaf-at-maximum", setp("server_cert", "props.validityPeriodHours", 9528)),
    Passes("openbao-ingress-backend-tls", "non-openbao-ingress-untouched", ingress_for("grafana", 3000)),
    Passes("openbao-service-exposure", "headless-peers-and-other-nodeport", both(
        service("openbao-internal", {"clusterIP": "None", "selector": SERVER_LABELS,
                                     "ports": [{"name": "https", "port": 8200}, {"name": "cluster", "port": 8201}]}),
        add("grafana_svc", {"type": "kubernetes:core/v1:Service", "name": "grafana-svc",
                            "props": {"apiVersion": "v1", "kind": "Service",
                                      "metadata": {"name": "grafana", "namespace": NS},
                                      "spec": {"type": "NodePort", "selector": {"app": "grafana"},
                                               "ports": [{"port": 3000}]}}}))),
    Passes("openbao-gateway-backend-tls", "route-to-other-service", both(
        drop("backendtls"), setp("httproute", "props.spec.rules.0.backendRefs.0", {"name": "grafana", "port": 3000}))),
    Passes("ingress-no-snippet-annotations", "other-controllers-annotations",
           setp("ingress", ("props", "metadata", "annotations", "external-dns.alpha.kubernetes.io/hostname"),
                "bao.example.com")),
    Passes("ingress-nginx-annotation-allowlist", "configured-allowlist",
           setp("ingress", ("props", "metadata", "annotations", NGINX + "rewrite-target"), "/"),
           config={"ingress-nginx-annotation-allowlist": {"allowedNginxAnnotations": [
               "backend-protocol", "proxy-ssl-verify", "proxy-ssl-secret", "proxy-ssl-name", "proxy-ssl-server-name",
               "rewrite-target"]}}),
    Passes("rbac-no-wildcards", "explicit-rules-with-resource-names",
           appendp("role", "props.rules", {"apiGroups": [""], "resources": ["configmaps"],
                                           "resourceNames": ["openbao-config"], "verbs": ["get", "watch"]})),
    Passes("rbac-no-privilege-escalation", "token-get-is-not-create",
           appendp("role", "props.rules", {"apiGroups": [""], "resources": ["serviceaccounts/token"], "verbs": ["get"]})),
    Passes("rbac-no-workload-secret-read", "human-group-may-read-secrets", both(
        role("reader", [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]),
        binding("ops", "Role", "reader", [{"kind": "Group", "name": "openbao-operators"}]))),
    Passes("rbac-no-privileged-bindings", "named-operator-group",
           binding("operators", "Role", "openbao", [{"kind": "Group", "name": "platform-operators"}])),
    Passes("rbac-no-default-serviceaccount", "user-named-default-is-not-the-sa",
           appendp("rolebinding", "props.subjects", {"kind": "User", "name": "default"})),
    Passes("rbac-clusterrolebinding-allowlist", "configured-allowlist",
           binding("viewer", "ClusterRole", "view", [sa_subject("openbao")], kind="ClusterRoleBinding"),
           config={"rbac-clusterrolebinding-allowlist": {"allowedClusterRoles": ["system:auth-delegator", "view"]}}),
    Passes("serviceaccount-token-automount", "api-account-configured",
           workload("Deployment", "reporter", hardened_pod(automountServiceAccountToken=True)),
           config={"serviceaccount-token-automount": {"apiServiceAccounts": ["openbao", "openbao-backup", "reporter"]}}),
    Passes("network-default-deny", "split-in-two-policies", both(
        setp("np_deny", "props.spec.policyTypes", ["Ingress"]),
        netpol("deny-egress", {"podSelector": {}, "policyTypes": ["Egress"]}))),
    Passes("network-openbao-ports", "api-from-listed-namespace-only", lambda s: None),
    Passes("pod-security-restricted", "net-bind-service-and-localhost-seccomp", both(
        setp("statefulset", f"{SERVER}.securityContext.capabilities.add", ["NET_BIND_SERVICE"]),
        setp("statefulset", f"{STS_POD}.securityContext.seccompProfile", {"type": "Localhost",
                                                                         "localhostProfile": "openbao.json"}))),
    Passes("pod-readonly-root-filesystem", "hardened-deployment", workload("Deployment", "reporter", hardened_pod())),
    Passes("pod-no-host-access", "projected-and-empty-dir-volumes", both(
        appendp("statefulset", f"{STS_POD}.volumes", {"name": "token", "projected": {"sources": [
            {"serviceAccountToken": {"path": "token", "expirationSeconds": 600}}]}}),
        setp("statefulset", f"{STS_POD}.hostNetwork", False))),
    Passes("pod-resource-limits", "integer-quantities",
           setp("cronjob", f"{JOB}.resources", {"requests": {"cpu": 1, "memory": "64Mi"},
                                                "limits": {"cpu": 1, "memory": "128Mi"}})),
    Passes("pod-secrets-as-files", "configmap-env-is-fine", both(
        appendp("cronjob", f"{JOB}.env", {"name": "LEVEL", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}}),
        setp("cronjob", f"{JOB}.envFrom", [{"configMapRef": {"name": "settings"}}]))),
    Passes("pod-image-pinned", "registry-port-with-tag-and-digest", both(
        setp("cronjob", f"{JOB}.image", "registry.local:5000/openbao/openbao:2.7.2"),
        setp("statefulset", f"{SERVER}.image", f"{IMAGE}@{DIGEST}"),
        setp("statefulset", f"{INIT}.image", f"quay.io/openbao/openbao@{DIGEST}"))),
    Passes("pod-image-pinned", "digest-required-and-present", both(
        setp("cronjob", f"{JOB}.image", f"{IMAGE}@{DIGEST}"),
        setp("statefulset", f"{SERVER}.image", f"{IMAGE}@{DIGEST}"),
        setp("statefulset", f"{INIT}.image", f"{IMAGE}@{DIGEST}")),
        config={"pod-image-pinned": {"requireDigest": True}}),
    Passes("ha-raft-replicas", "five", setp("statefulset", "props.spec.replicas", 5)),
    Passes("ha-quorum-pdb", "min-available-majority-percent", both(
        delp("pdb", "props.spec.maxUnavailable"), setp("pdb", "props.spec.minAvailable", "51%"))),
    Passes("ha-quorum-pdb", "five-tolerate-two", both(setp("statefulset", "props.spec.replicas", 5),
                                                      setp("pdb", "props.spec.maxUnavailable", 2))),
    Passes("ha-pod-anti-affinity", "match-expressions-selector",
           setp("statefulset", f"{STS_POD}.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution.0"
                ".labelSelector", {"matchExpressions": [{"key": "app.kubernetes.io/name", "operator": "In",
                                                         "values": ["openbao"]}]})),
    Passes("ha-zone-spread", "schedule-anyway",
           setp("statefulset", f"{STS_POD}.topologySpreadConstraints.0.whenUnsatisfiable", "ScheduleAnyway")),
    Passes("ha-ondelete-updates", "rolling-update-outside-production",
           setp("statefulset", "props.spec.updateStrategy.type", "RollingUpdate"),
           config={"ha-ondelete-updates": {"production": False}}),
    Passes("openbao-acl-least-privilege", "own-subtree-and-shared-read", declared(**{
        "policy__shared-ci.hcl": acl("secret/data/shared/*", '"read", "list"'),
        "policy__tenant-team-b.hcl": acl("secret/data/tenants/team-b/*", '"read"')})),
    Passes("openbao-auth-role-bound", "named-accounts", declared(**{
        "role__tenant-team-b": ROLE_A.replace("names=app", "names=api,web").replace("team-a", "team-b")})),
    Passes("openbao-token-ttl-bounds", "within-bounds", declared(**{
        "role__tenant-team-a": ROLE_A.replace("token_max_ttl=14400", "token_max_ttl=86400")})),
    Passes("unseal-key-protected", "rotation-with-files",
           seal(previous_key="file:///openbao/unseal/unseal-v0", previous_key_id="unseal-v0")),
    Passes("configmap-no-credentials", "ca-certs-scripts-and-digests", both(
        configmap("cm_ca", "trust", {"ca.crt": CA_PEM, "bundle.pem": CA_PEM + CA_PEM}),
        setp("config", ("props", "data", "start.sh"),
             f"#!/bin/sh\n# image quay.io/openbao/openbao@{DIGEST}\nexec bao server -config=/openbao/config\n"))),
]


def _analyze(analyzer: PolicyAnalyzer, mutate: Mutation, config: Mapping[str, Mapping[str, Any]]):
    analyzer.configure({**PRODUCTION, **config})
    stack = baseline()
    mutate(stack)
    return stack, analyzer.analyze_all(resources(stack))


def test_baseline_is_clean(policy: PolicyAnalyzer) -> None:
    """The compliant production stack passes every rule: the cases below each break one thing."""
    assert policy.analyze_all(resources(baseline())) == []


@pytest.mark.parametrize("case", FAILS, ids=[f"{c.rule}:{c.id}" for c in FAILS])
def test_rule_reports_violation(analyzer: PolicyAnalyzer, case: Fails) -> None:
    stack, diagnostics = _analyze(analyzer, case.mutate, case.config)
    hits = [d for d in diagnostics if d.policy == case.rule]
    assert hits, f"{case.rule} did not fire; got {[(d.policy, d.message) for d in diagnostics]}"
    assert {d.level for d in hits} == {"mandatory"}
    assert any(all(e in d.message for e in case.expect) for d in hits), \
        f"no {case.rule} message contains {case.expect}:\n" + "\n".join(d.message for d in hits)
    if case.on:
        target = stack[case.on]
        assert urn(target["type"], target["name"]) in {d.urn for d in hits}
    unexpected = {d.policy for d in diagnostics} - {case.rule, *case.also}
    assert not unexpected, f"other rules fired too: {[(d.policy, d.message) for d in diagnostics if d.policy in unexpected]}"


@pytest.mark.parametrize("case", PASSES, ids=[f"{c.rule}:{c.id}" for c in PASSES])
def test_rule_passes_compliant(analyzer: PolicyAnalyzer, case: Passes) -> None:
    _, diagnostics = _analyze(analyzer, case.mutate, case.config)
    assert diagnostics == [], [(d.policy, d.message) for d in diagnostics]


def test_every_rule_has_a_failing_and_a_passing_case(analyzer: PolicyAnalyzer) -> None:
    """No rule ships without proof: a violating case and a compliant near miss each."""
    assert set(analyzer.policy_names) == {c.rule for c in FAILS}
    assert set(analyzer.policy_names) == {c.rule for c in PASSES}
