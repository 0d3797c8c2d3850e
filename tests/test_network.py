"""NetworkPolicies admit exactly the flows OpenBao needs, proven with the evaluator."""

from __future__ import annotations

import copy
from typing import Any, Mapping, Optional

import pytest

from openbao_platform.backup import backup_labels
from openbao_platform.naming import ClusterNames
from openbao_platform.netpol_eval import NAMESPACE_NAME_LABEL, Cluster, Endpoint, External, Pod
from openbao_platform.network import OpenBaoNetworkPolicies, network_policies, network_spec
from openbao_platform.platform import network_args
from openbao_platform.settings import Settings, parse_settings
from tests.schema.harness import run_component

PROD: dict[str, Any] = {
    "production": True,
    "ingress": {"mode": "nginx", "host": "bao.example.com", "certManagerIssuer": "letsencrypt"},
    "network": {"clientNamespaces": ["payments", "web"], "kubeApiCidrs": ["10.0.0.10/32", "10.0.0.11/32"],
                "kubeApiPort": 6443},
    "monitoring": {"enabled": True},
    "backup": {"enabled": True},
}
NAMESPACES = ["openbao", "ingress-nginx", "payments", "web", "monitoring", "kube-system", "gateway-system",
              "envoy-gateway-system", "attacker"]
PORTS = [(53, "UDP"), (53, "TCP"), (443, "TCP"), (6443, "TCP"), (8080, "TCP"), (8200, "TCP"), (8201, "TCP")]


def settings(**sections: Mapping[str, Any]) -> Settings:
    """The prod-like stack with some sections merged over it."""
    raw = copy.deepcopy(PROD)
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return parse_settings(raw, "prod")


def endpoints(s: Settings) -> dict[str, Endpoint]:
    """Every party in the model: OpenBao's namespace, its neighbours, impostors, the outside."""
    ns = s.namespace
    return {
        "bao-0": Pod(ns, s.selector_labels, ip="10.244.0.10"),
        "bao-1": Pod(ns, s.selector_labels, ip="10.244.0.11"),
        "backup": Pod(ns, backup_labels(s), ip="10.244.0.20"),
        "stray": Pod(ns, {"app": "debug"}, ip="10.244.0.30"),
        "nginx": Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}, ip="10.244.1.10"),
        "nginx-backend": Pod("ingress-nginx", {"app.kubernetes.io/name": "default-backend"}, ip="10.244.1.11"),
        "payments": Pod("payments", {"app": "checkout"}, ip="10.244.2.10"),
        "web": Pod("web", {"app": "frontend"}, ip="10.244.2.11"),
        "prometheus": Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}, ip="10.244.3.10"),
        "grafana": Pod("monitoring", {"app.kubernetes.io/name": "grafana"}, ip="10.244.3.11"),
        "dns": Pod("kube-system", {"k8s-app": "kube-dns"}, ip="10.244.4.10"),
        "metrics-server": Pod("kube-system", {"k8s-app": "metrics-server"}, ip="10.244.4.11"),
        "gateway": Pod("gateway-system", {"app": "envoy"}, ip="10.244.5.10"),
        "eg-proxy": Pod("envoy-gateway-system", {"app.kubernetes.io/component": "proxy"}, ip="10.244.5.20"),
        "fake-dns": Pod("attacker", {"k8s-app": "kube-dns"}, ip="10.244.9.10"),
        "attacker": Pod("attacker", {"app.kubernetes.io/name": "ingress-nginx", **s.selector_labels}, ip="10.244.9.11"),
        "kube-api-1": External("10.0.0.10"),
        "kube-api-2": External("10.0.0.11"),
        "internet": External("8.8.8.8"),
    }


Flow = tuple[str, str, int, str]


def policies(s: Settings) -> dict[str, dict[str, Any]]:
    """The stack's policies, built the way the platform builds them (its args mapping)."""
    return network_policies(network_spec(network_args(s)))


def cluster_for(s: Settings) -> Cluster:
    return Cluster({n: {} for n in {*NAMESPACES, s.namespace}}, list(policies(s).values()))


def allowed_flows(s: Settings) -> set[Flow]:
    """Every admitted flow that touches OpenBao's namespace (the only one our policies govern)."""
    c, eps = cluster_for(s), endpoints(s)
    return {(a, b, port, proto)
            for a, src in eps.items() for b, dst in eps.items() if a != b
            and s.namespace in (getattr(src, "namespace", None), getattr(dst, "namespace", None))
            for port, proto in PORTS if c.allowed(src, dst, port, proto)}


def _to_servers(sources: list[str], port: int = 8200) -> set[Flow]:
    return {(src, dst, port, "TCP") for src in sources for dst in ("bao-0", "bao-1")}


PEERS = {("bao-0", "bao-1", p, "TCP") for p in (8200, 8201)} | {("bao-1", "bao-0", p, "TCP") for p in (8200, 8201)}
DNS = {(src, "dns", 53, proto) for src in ("bao-0", "bao-1", "backup") for proto in ("UDP", "TCP")}
KUBE_API = {(src, api, 6443, "TCP") for src in ("bao-0", "bao-1") for api in ("kube-api-1", "kube-api-2")}
#: The complete allow-list of the prod-like stack (nginx, two client namespaces, monitoring, backups).
EXPECTED = _to_servers(["nginx", "payments", "web", "prometheus", "backup"]) | PEERS | DNS | KUBE_API


def test_exactly_the_expected_flows_are_allowed() -> None:
    assert allowed_flows(settings()) == EXPECTED


@pytest.mark.parametrize("flow", sorted(EXPECTED), ids=lambda f: f"{f[0]}->{f[1]}:{f[2]}/{f[3]}")
def test_allowed_flow(flow: Flow) -> None:
    src, dst, port, proto = flow
    s = settings()
    assert cluster_for(s).allowed(endpoints(s)[src], endpoints(s)[dst], port, proto)


@pytest.mark.parametrize("src, dst, port, proto, why", [
    ("attacker", "bao-0", 8200, "TCP", "another namespace, even wearing the controller's and OpenBao's labels"),
    ("grafana", "bao-0", 8200, "TCP", "monitoring namespace but not Prometheus"),
    ("nginx-backend", "bao-0", 8200, "TCP", "controller namespace but not the controller pods"),
    ("internet", "bao-0", 8200, "TCP", "no ipBlock admits the outside"),
    ("payments", "bao-0", 8201, "TCP", "the cluster port is for peers only"),
    ("nginx", "bao-0", 8201, "TCP", "the cluster port is for peers only"),
    ("prometheus", "bao-0", 8201, "TCP", "the cluster port is for peers only"),
    ("backup", "bao-0", 8201, "TCP", "the backup job uses the API only"),
    ("stray", "bao-0", 8200, "TCP", "other pods in the namespace are default-denied"),
    ("bao-0", "internet", 443, "TCP", "no egress to the internet"),
    ("bao-0", "kube-api-1", 443, "TCP", "API server only on the configured port"),
    ("bao-0", "metrics-server", 53, "TCP", "DNS port, but not a DNS pod"),
    ("bao-0", "fake-dns", 53, "UDP", "DNS labels, but not the DNS namespace"),
    ("bao-0", "dns", 8200, "TCP", "DNS pods only on 53"),
    ("bao-0", "nginx", 8080, "TCP", "no egress to the ingress controller"),
    ("bao-0", "backup", 8080, "TCP", "nothing may reach the backup job"),
    ("backup", "internet", 443, "TCP", "the backup job has no internet egress"),
    ("backup", "kube-api-1", 6443, "TCP", "the backup job does not call the API server"),
    ("stray", "internet", 443, "TCP", "other pods in the namespace are default-denied"),
])
def test_denied_flow(src: str, dst: str, port: int, proto: str, why: str) -> None:
    s = settings()
    assert not cluster_for(s).allowed(endpoints(s)[src], endpoints(s)[dst], port, proto), why


def test_prometheus_is_admitted_only_when_monitoring_is_enabled() -> None:
    flows = allowed_flows(settings(monitoring={"enabled": False}))
    assert flows == EXPECTED - _to_servers(["prometheus"])


def test_nothing_is_published_without_an_ingress() -> None:
    flows = allowed_flows(settings(ingress={"mode": "none", "host": None, "certManagerIssuer": None}))
    assert flows == EXPECTED - _to_servers(["nginx"])


def test_without_backups_there_is_no_backup_policy_and_the_job_pods_are_denied() -> None:
    s = settings(backup={"enabled": False})
    assert "backup" not in policies(s)
    assert allowed_flows(s) == EXPECTED - _to_servers(["backup"]) - {f for f in DNS if f[0] == "backup"}


def test_gateway_mode_admits_the_gateway_namespace_instead_of_nginx() -> None:
    flows = allowed_flows(settings(ingress={"mode": "gateway"}))
    assert flows == EXPECTED - _to_servers(["nginx"]) | _to_servers(["gateway"])


def test_gateway_proxies_elsewhere_can_be_narrowed_to_their_namespace_and_labels() -> None:
    s = settings(ingress={"mode": "gateway", "gatewayProxyNamespace": "envoy-gateway-system",
                          "gatewayProxyPodLabels": {"app.kubernetes.io/component": "proxy"}})
    flows = allowed_flows(s)
    assert flows == EXPECTED - _to_servers(["nginx"]) | _to_servers(["eg-proxy"])


def test_client_namespaces_come_from_settings() -> None:
    flows = allowed_flows(settings(network={"clientNamespaces": ["payments"]}))
    assert flows == EXPECTED - _to_servers(["web"])


def _peers(policy: dict[str, Any]) -> list[tuple[str, Optional[list[dict[str, Any]]]]]:
    spec = policy["spec"]
    return [(d, rule.get(k)) for d, k in (("ingress", "from"), ("egress", "to")) for rule in spec.get(d, [])]


@pytest.mark.parametrize("mode", ["nginx", "gateway"])
def test_no_rule_opens_a_port_to_every_namespace_or_address(mode: str) -> None:
    for policy in policies(settings(ingress={"mode": mode})).values():
        for direction, peers in _peers(policy):
            assert peers, f"{policy['metadata']['name']}: an {direction} rule without peers admits everyone"
            for peer in peers:
                if "namespaceSelector" in peer:
                    assert set(peer["namespaceSelector"]) == {"matchLabels"}
                    assert NAMESPACE_NAME_LABEL in peer["namespaceSelector"]["matchLabels"], peer
                if "podSelector" in peer:
                    assert peer["podSelector"].get("matchLabels"), peer
                if "ipBlock" in peer:
                    assert not peer["ipBlock"]["cidr"].endswith("/0"), peer


def test_default_deny_covers_every_pod_in_both_directions() -> None:
    deny = policies(settings())["default-deny"]
    assert deny["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert deny["metadata"]["namespace"] == "openbao"


def test_policies_live_in_the_openbao_namespace_with_common_labels() -> None:
    s = settings()
    for policy in policies(s).values():
        assert policy["metadata"]["namespace"] == s.namespace
        assert policy["metadata"]["labels"] == s.common_labels


def test_component_creates_each_policy_as_a_child() -> None:
    s = settings()
    registrations, names = run_component(
        lambda: OpenBaoNetworkPolicies("bao-net", network_args(s)), lambda c: c.policy_names)
    assert names == ["openbao-default-deny", "openbao-server", "openbao-backup", "openbao-reconcile"]
    assert [r.type for r in registrations if not r.custom] == ["openbao-platform:index:OpenBaoNetworkPolicies"]
    children = {r.name: r.plain_props for r in registrations if r.custom}
    assert set(children) == {"bao-net-default-deny", "bao-net-server", "bao-net-backup", "bao-net-reconcile"}
    assert all(r.type == "kubernetes:networking.k8s.io/v1:NetworkPolicy" for r in registrations if r.custom)
    expected = policies(s)
    for role, props in ((n.removeprefix("bao-net-"), p) for n, p in children.items()):
        assert props["spec"] == expected[role]["spec"] and props["metadata"] == expected[role]["metadata"]


# --- OpenBaoNetworkPolicies as a reusable component: narrow args, validated, analyzable ------


def test_network_policies_stand_alone_without_stack_settings() -> None:
    """Another team's cluster "vault" in "secrets", one client namespace, nothing else admitted."""
    from tests.support.component import run_components

    run = run_components(lambda: OpenBaoNetworkPolicies("vault-net", {
        "name": "vault", "namespace": "secrets", "client_namespaces": ["payments"],
        "kube_api_cidrs": ["10.0.0.10/32"], "kube_api_port": 6443}))
    objs = {r.name: r.plain_props for r in run.kubernetes_objects()}
    assert set(objs) == {"vault-net-default-deny", "vault-net-server"}  # no backup policy unless allowed
    assert {o["metadata"]["name"] for o in objs.values()} == {"vault-default-deny", "vault-server"}
    assert all(o["metadata"]["namespace"] == "secrets" for o in objs.values())
    c = Cluster({n: {} for n in ["secrets", "payments", "web", "monitoring", "ingress-nginx", "kube-system"]},
                list(objs.values()))
    vault = Pod("secrets", {"app.kubernetes.io/name": "openbao", "app.kubernetes.io/instance": "vault"}, ip="10.1.0.1")
    assert c.allowed(Pod("payments", {"app": "checkout"}), vault, 8200)
    assert c.allowed(vault, External("10.0.0.10"), 6443)
    assert c.allowed(vault, Pod("kube-system", {"k8s-app": "kube-dns"}), 53, "UDP")
    for stranger in (Pod("web", {}), Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}),
                     Pod("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
                     Pod("secrets", backup_labels(ClusterNames("vault", "secrets")))):
        assert not c.allowed(stranger, vault, 8200), stranger  # secure defaults: only what was asked for


def test_network_policies_admit_the_edge_backup_and_monitoring_when_asked() -> None:
    spec = network_spec({"name": "vault", "namespace": "secrets", "edge_namespace": "envoy",
                         "edge_pod_labels": {"app": "proxy"}, "allow_backup": True, "allow_monitoring": True})
    c = Cluster({n: {} for n in ["secrets", "envoy", "monitoring"]}, list(network_policies(spec).values()))
    vault = Pod("secrets", spec.selector_labels, ip="10.1.0.1")
    assert c.allowed(Pod("envoy", {"app": "proxy"}), vault, 8200)
    assert not c.allowed(Pod("envoy", {"app": "other"}), vault, 8200)
    assert c.allowed(Pod("monitoring", {"app.kubernetes.io/name": "prometheus"}), vault, 8200)
    assert c.allowed(Pod("secrets", backup_labels(spec)), vault, 8200)
    assert set(network_policies(spec)) == {"default-deny", "server", "backup"}


def test_network_policies_reject_bad_args_before_creating_anything() -> None:
    from openbao_platform.settings import ArgsError
    from tests.support.component import run_components

    errors: list[str] = []

    def build() -> None:
        with pytest.raises(ArgsError) as err:
            OpenBaoNetworkPolicies("vault-net", {"name": "vault", "namespace": "secrets",
                                                 "client_namespaces": ["secrets"], "kube_api_cidrs": ["0.0.0.0/0"],
                                                 "edge_pod_labels": {"app": "proxy"}, "allow_backup": "yes"})
        errors.append(str(err.value))

    run = run_components(build)
    assert run.registrations == []  # validated before the component registers
    (text,) = errors
    assert "OpenBaoNetworkPoliciesArgs.client_namespaces = \"secrets\": is the OpenBao namespace itself. " \
           "Fix: list only namespaces of client workloads." in text
    assert "OpenBaoNetworkPoliciesArgs.kube_api_cidrs = \"0.0.0.0/0\": opens egress to every address. Fix:" in text
    assert "OpenBaoNetworkPoliciesArgs.edge_pod_labels = {\"app\": \"proxy\"}: selects no pods without " \
           "edge_namespace. Fix:" in text
    assert "OpenBaoNetworkPoliciesArgs.allow_backup = \"yes\": must be true or false. Fix:" in text


def test_network_policies_need_a_name_and_namespace() -> None:
    from openbao_platform.settings import ArgsError

    with pytest.raises(ArgsError) as err:
        network_spec({"namespace": "Secrets"})  # type: ignore[typeddict-item]
    assert "OpenBaoNetworkPoliciesArgs.name = null: must be a string" in str(err.value)
    assert "OpenBaoNetworkPoliciesArgs.namespace = \"Secrets\": is not a valid DNS-1123 label" in str(err.value)


def test_network_policies_schema_describes_every_input() -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    (comp,) = Analyzer("openbao-platform").analyze([OpenBaoNetworkPolicies])["component_definitions"].values()
    assert set(comp.inputs) == {"name", "namespace", "clientNamespaces", "kubeApiCidrs", "kubeApiPort", "dnsNamespace",
                                "dnsPodLabels", "edgeNamespace", "edgePodLabels", "allowBackup", "allowMonitoring",
                                "monitoringNamespace", "monitoringPodLabels", "backupStorageCidrs", "backupStoragePort",
                                "allowReconciler"}
    assert all(p.description for p in comp.inputs.values())
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"name", "namespace"}
    assert set(comp.outputs) == {"policyNames"} and all(p.description for p in comp.outputs.values())


def test_backup_pods_reach_the_storage_endpoint_and_nothing_else_outside() -> None:
    """backup.remote: egress to the endpoint's CIDRs on its port, beside DNS and the API; no other address."""
    remote = {"enabled": True, "endpoint": "https://minio.storage.example:9000", "bucket": "openbao-backups",
              "endpointCidrs": ["10.20.0.0/24"], "endpointPort": 9000, "credentialsSecretName": "s3"}
    s = settings(backup={"remote": remote})
    egress = policies(s)["backup"]["spec"]["egress"]
    assert egress[-1] == {"to": [{"ipBlock": {"cidr": "10.20.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 9000}]}
    assert [rule for rule in egress if any("ipBlock" in peer for peer in rule["to"])] == [egress[-1]]
    assert "ipBlock" not in str(policies(settings())["backup"])  # without remote: no address outside at all
    with pytest.raises(Exception, match="opens egress to every address"):
        network_spec({"name": "openbao", "namespace": "openbao", "allow_backup": True,
                      "backup_storage_cidrs": ["0.0.0.0/0"]})
