"""NetworkPolicies for the OpenBao namespace: deny everything, then allow exactly the flows
OpenBao needs.

Policies (all in the cluster's ``namespace``):

* ``<name>-default-deny``: every pod in the namespace, ingress and egress, no rules.
* ``<name>-server`` (OpenBao pods):
  - ingress 8200 from the edge (``edge_namespace``/``edge_pod_labels``: the ingress-nginx
    controller pods, or the Gateway's proxy pods), from each client namespace, from the
    backup job (``allow_backup``), and from Prometheus (``allow_monitoring``); 8200 + 8201
    from the other OpenBao pods;
  - egress to cluster DNS (UDP+TCP 53), to the other OpenBao pods (8200 raft join and
    ``/v1/sys/init`` checks, 8201 cluster traffic), and to the Kubernetes API server
    (service registration, kubernetes auth token reviews).
* ``<name>-backup`` (backup job pods, with ``allow_backup``): egress to OpenBao 8200
  and DNS only, plus ``backup_storage_cidrs`` on ``backup_storage_port`` (the bucket's
  endpoint, with backup.remote); no ingress.
* ``<name>-reconcile`` (configuration Job and CronJob pods, with ``allow_reconciler``): egress
  to OpenBao 8200 and DNS only; no ingress.

Every peer names its namespace (``kubernetes.io/metadata.name``): there is no empty
selector that would open a port to every namespace. Kubelet probes come from the node
and are not subject to these policies on common CNIs.

The component takes only what the policies consume (``OpenBaoNetworkPoliciesArgs``: the
cluster's name and namespace, the peers), never the stack settings; the args are validated
with the stack config's ``network`` rules into a ``NetworkSpec``. The pure functions take
that spec and return plain dicts (the objects as YAML holds them); the component only turns
them into ``pulumi_kubernetes`` resources, so tests and the evaluator in
``openbao_platform.netpol_eval`` run over exactly what is deployed.
"""


import functools
import ipaddress
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from openbao_platform.backup import backup_labels
from openbao_platform.cluster_manifests import metadata
from openbao_platform.configuration import reconciler_labels
from openbao_platform.naming import NamedCluster
from openbao_platform.netpol_eval import NAMESPACE_NAME_LABEL
from openbao_platform.server_config import API_PORT, CLUSTER_PORT
from openbao_platform.settings import ArgsCheck, NetworkSettings, _dns_label, _parse_network, _Reader
from openbao_platform.tokens import token, with_previous_token

DNS_PORT = 53


class OpenBaoNetworkPoliciesArgs(TypedDict, total=False):
    """Inputs of OpenBaoNetworkPolicies: the cluster they isolate and the peers they admit."""

    name: Required[str]
    """Name of the OpenBao cluster (its StatefulSet): selects its pods and prefixes each policy's name."""
    namespace: Required[str]
    """Namespace of the cluster; the policies (default deny included) govern every pod in it."""
    client_namespaces: list[str]
    """Namespaces whose pods may call the API on 8200. Default none."""
    kube_api_cidrs: list[str]
    """The API server's addresses as CIDRs (`kubectl get endpoints kubernetes`). Default ["10.96.0.1/32"]."""
    kube_api_port: int
    """The API server's port (service registration, kubernetes auth token reviews). Default 443."""
    dns_namespace: str
    """Namespace of cluster DNS. Default kube-system."""
    dns_pod_labels: dict[str, str]
    """Labels of the cluster DNS pods. Default {k8s-app: kube-dns}."""
    edge_namespace: str
    """Namespace of the pods proxying public traffic (ingress controller, Gateway proxies); omit if none."""
    edge_pod_labels: dict[str, str]
    """Labels narrowing the edge peer to the proxy pods. Default none: every pod in edge_namespace."""
    allow_backup: bool
    """Admit the OpenBaoBackup job's pods to the API, with their own policy (DNS, OpenBao only). Default false."""
    allow_reconciler: bool
    """Admit the OpenBaoConfiguration jobs' pods to the API, with their own policy (DNS, OpenBao only). Default false."""
    allow_monitoring: bool
    """Admit Prometheus (monitoring_namespace, monitoring_pod_labels) to scrape the API port. Default false."""
    backup_storage_cidrs: list[str]
    """With allow_backup: the object-storage endpoint's addresses the backup pods may also reach. Default none."""
    backup_storage_port: int
    """The object-storage endpoint's TCP port (with backup_storage_cidrs). Default 443."""
    monitoring_namespace: str
    """Namespace of Prometheus. Default monitoring."""
    monitoring_pod_labels: dict[str, str]
    """Labels of the Prometheus pods. Default {app.kubernetes.io/name: prometheus}."""


@dataclass(frozen=True)
class EdgePeer:
    """The pods that proxy public traffic: one namespace, optionally narrowed by pod labels."""

    namespace: str
    pod_labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NetworkSpec(NamedCluster):
    """Validated OpenBaoNetworkPolicies args: what the pure builders below consume."""

    name: str
    namespace: str
    network: NetworkSettings = field(default_factory=NetworkSettings)
    edge: Optional[EdgePeer] = None
    allow_backup: bool = False
    allow_monitoring: bool = False
    backup_storage_cidrs: tuple[str, ...] = ()
    backup_storage_port: int = 443
    allow_reconciler: bool = False


_NETWORK_KEYS = ("client_namespaces", "kube_api_cidrs", "kube_api_port", "dns_namespace", "dns_pod_labels",
                 "monitoring_namespace", "monitoring_pod_labels")


@dataclass(frozen=True)
class _Peers:
    edge: Optional[EdgePeer]
    allow_backup: bool
    allow_monitoring: bool
    backup_storage_cidrs: tuple[str, ...] = ()
    backup_storage_port: int = 443


def _parse_storage_peer(r: _Reader) -> tuple[tuple[str, ...], int]:
    """The backup pods' object-storage egress, with the ``backup.remote`` rules for CIDRs and port."""
    cidrs = r.get_str_list("backupStorageCidrs", (), "list the storage endpoint's addresses as CIDRs")
    port = r.get("backupStoragePort", int, 443, "use the endpoint's TCP port, e.g. 443")
    for c in cidrs:
        try:
            if ipaddress.ip_network(c, strict=True).prefixlen == 0:
                r.fail("backupStorageCidrs", c, "opens egress to every address", "list only the storage endpoint's addresses")
        except ValueError:
            r.fail("backupStorageCidrs", c, "is not a valid CIDR", "use e.g. 10.0.0.5/32")
    if not 1 <= port <= 65535:
        r.fail("backupStoragePort", port, "is not a TCP port", "use e.g. 443")
    return cidrs, port


def _parse_peers(r: _Reader) -> _Peers:
    """The edge peer and the two switches, with the config's rules for namespaces, labels and booleans."""
    ns = r.get("edgeNamespace", str, None, "use the namespace of the ingress controller's or the Gateway proxies' pods")
    labels = r.get_labels("edgePodLabels", (),
                          "use the edge proxy pods' labels, e.g. {app.kubernetes.io/name: ingress-nginx}")
    backup = r.get("allowBackup", bool, False, "use true or false")
    monitoring = r.get("allowMonitoring", bool, False, "use true or false")
    edge = None
    if ns is not None:
        _dns_label(r, "edgeNamespace", ns)
        edge = EdgePeer(ns, labels)
    elif labels:
        r.fail("edgePodLabels", dict(labels), "selects no pods without edge_namespace",
               "set edge_namespace to the proxy pods' namespace, or remove edge_pod_labels")
    return _Peers(edge, backup, monitoring)


def network_spec(args: OpenBaoNetworkPoliciesArgs) -> NetworkSpec:
    """The validated spec (the stack config's identity and ``network`` rules), or ArgsError."""
    with ArgsCheck("OpenBaoNetworkPolicies") as check:
        names = check.identity(args)
        network = check.section("network", {k: args.get(k) for k in _NETWORK_KEYS},
                                functools.partial(_parse_network, namespace=names.namespace))
        peers = check.section("", {"edge_namespace": args.get("edge_namespace"),
                                   "edge_pod_labels": args.get("edge_pod_labels") or None,
                                   "allow_backup": args.get("allow_backup"),
                                   "allow_monitoring": args.get("allow_monitoring")}, _parse_peers)
        storage_cidrs, storage_port = check.section("", {"backup_storage_cidrs": args.get("backup_storage_cidrs"),
                                                         "backup_storage_port": args.get("backup_storage_port")},
                                                    _parse_storage_peer)
        reconciler = check.section("", {"allow_reconciler": args.get("allow_reconciler")},
                                   lambda r: r.get("allowReconciler", bool, False, "use true or false"))
    return NetworkSpec(name=names.name, namespace=names.namespace, network=network, edge=peers.edge,
                       allow_reconciler=reconciler,
                       allow_backup=peers.allow_backup, allow_monitoring=peers.allow_monitoring,
                       backup_storage_cidrs=storage_cidrs, backup_storage_port=storage_port)


def _tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def _dns_ports() -> list[dict[str, Any]]:
    return [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]


def _in_namespace(namespace: str, pod_labels: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """One peer: pods in one named namespace, optionally narrowed by pod labels (ANDed)."""
    peer: dict[str, Any] = {"namespaceSelector": {"matchLabels": {NAMESPACE_NAME_LABEL: namespace}}}
    if pod_labels:
        peer["podSelector"] = {"matchLabels": dict(pod_labels)}
    return peer


def _local_pods(labels: Mapping[str, str]) -> dict[str, Any]:
    """One peer: pods in the policy's own namespace with these labels."""
    return {"podSelector": {"matchLabels": dict(labels)}}


def _policy(names: NetworkSpec, name: str, pod_labels: Mapping[str, str], *,
            ingress: list[dict[str, Any]], egress: list[dict[str, Any]]) -> dict[str, Any]:
    # policyTypes always lists both directions, so an empty rule list means "deny", never
    # "not isolated" (the API server's defaulting would drop Egress for an empty list).
    spec: dict[str, Any] = {"podSelector": {"matchLabels": dict(pod_labels)} if pod_labels else {},
                            "policyTypes": ["Ingress", "Egress"]}
    if ingress:
        spec["ingress"] = ingress
    if egress:
        spec["egress"] = egress
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": metadata(names, name), "spec": spec}


def edge_peer(spec: NetworkSpec) -> Optional[dict[str, Any]]:
    """The pods that proxy public traffic to OpenBao, or None when nothing is published.

    nginx: the controller's namespace AND pod labels. Gateway API: the proxies' namespace
    (the Gateway's, or wherever the implementation runs them, e.g. Envoy Gateway), narrowed
    by their pod labels when given.
    """
    if spec.edge is None:
        return None
    return _in_namespace(spec.edge.namespace, dict(spec.edge.pod_labels))


def api_client_peers(spec: NetworkSpec) -> list[dict[str, Any]]:
    """Everyone outside the OpenBao pods that may call the API on 8200."""
    peers: list[dict[str, Any]] = []
    edge = edge_peer(spec)
    if edge:
        peers.append(edge)
    peers.extend(_in_namespace(ns) for ns in spec.network.client_namespaces)
    if spec.allow_backup:
        peers.append(_local_pods(backup_labels(spec)))
    if spec.allow_reconciler:
        peers.append(_local_pods(reconciler_labels(spec)))
    if spec.allow_monitoring:
        net = spec.network
        peers.append(_in_namespace(net.monitoring_namespace, dict(net.monitoring_pod_labels)))
    return peers


def _dns_egress(spec: NetworkSpec) -> dict[str, Any]:
    net = spec.network
    return {"to": [_in_namespace(net.dns_namespace, dict(net.dns_pod_labels))], "ports": _dns_ports()}


def default_deny_policy(spec: NetworkSpec) -> dict[str, Any]:
    """Deny all ingress and egress for every pod in the namespace."""
    return _policy(spec, f"{spec.name}-default-deny", {}, ingress=[], egress=[])


def server_policy(spec: NetworkSpec) -> dict[str, Any]:
    """The OpenBao pods' allowed flows."""
    ingress = [{"from": [_local_pods(spec.selector_labels)], "ports": _tcp(API_PORT, CLUSTER_PORT)}]
    clients = api_client_peers(spec)
    if clients:
        ingress.append({"from": clients, "ports": _tcp(API_PORT)})
    egress = [
        _dns_egress(spec),
        {"to": [_local_pods(spec.selector_labels)], "ports": _tcp(API_PORT, CLUSTER_PORT)},
        {"to": [{"ipBlock": {"cidr": cidr}} for cidr in spec.network.kube_api_cidrs],
         "ports": _tcp(spec.network.kube_api_port)},
    ]
    return _policy(spec, f"{spec.name}-server", spec.selector_labels, ingress=ingress, egress=egress)


def backup_policy(spec: NetworkSpec) -> dict[str, Any]:
    """The backup job may reach OpenBao's API, DNS and (with object storage) the storage endpoint; nothing may reach it."""
    egress = [_dns_egress(spec), {"to": [_local_pods(spec.selector_labels)], "ports": _tcp(API_PORT)}]
    if spec.backup_storage_cidrs:
        egress.append({"to": [{"ipBlock": {"cidr": c}} for c in spec.backup_storage_cidrs],
                       "ports": _tcp(spec.backup_storage_port)})
    return _policy(spec, f"{spec.name}-backup", backup_labels(spec), ingress=[], egress=egress)


def reconciler_policy(spec: NetworkSpec) -> dict[str, Any]:
    """The configuration jobs may reach OpenBao's API and DNS; nothing may reach them."""
    egress = [_dns_egress(spec), {"to": [_local_pods(spec.selector_labels)], "ports": _tcp(API_PORT)}]
    return _policy(spec, f"{spec.name}-reconcile", reconciler_labels(spec), ingress=[], egress=egress)


def network_policies(spec: NetworkSpec) -> dict[str, dict[str, Any]]:
    """Every NetworkPolicy for the cluster, keyed by role (used for child resource names)."""
    policies = {
        "default-deny": default_deny_policy(spec),
        "server": server_policy(spec),
    }
    if spec.allow_backup:
        policies["backup"] = backup_policy(spec)
    if spec.allow_reconciler:
        policies["reconcile"] = reconciler_policy(spec)
    return policies


class OpenBaoNetworkPolicies(pulumi.ComponentResource):
    """Default-deny plus the allow-list NetworkPolicies for one OpenBao cluster."""

    policy_names: pulumi.Output[list[str]]
    """Names of the NetworkPolicies created, in the OpenBao namespace."""

    def __init__(self, name: str, args: OpenBaoNetworkPoliciesArgs,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        spec = network_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("OpenBaoNetworkPolicies"), name, None, with_previous_token(opts, "openbao:network:OpenBaoNetworkPolicies"))
        child = pulumi.ResourceOptions(parent=self)
        created = [
            k8s.networking.v1.NetworkPolicy(f"{name}-{role}", metadata=obj["metadata"], spec=obj["spec"], opts=child)
            for role, obj in network_policies(spec).items()
        ]
        self.policy_names = pulumi.Output.all(*[p.metadata.name for p in created])
        self.register_outputs({"policy_names": self.policy_names})
