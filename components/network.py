"""NetworkPolicies for the OpenBao namespace: deny everything, then allow exactly the flows
OpenBao needs.

Policies (all in ``settings.namespace``):

* ``<name>-default-deny``: every pod in the namespace, ingress and egress, no rules.
* ``<name>-server`` (OpenBao pods):
  - ingress 8200 from the edge (ingress-nginx controller pods, or the Gateway's proxy
    pods), from each client namespace, from the backup job, and from Prometheus when
    monitoring is enabled; 8200 + 8201 from the other OpenBao pods;
  - egress to cluster DNS (UDP+TCP 53), to the other OpenBao pods (8200 raft join and
    ``/v1/sys/init`` checks, 8201 cluster traffic), and to the Kubernetes API server
    (service registration, kubernetes auth token reviews).
* ``<name>-backup`` (backup job pods, when backups are enabled): egress to OpenBao 8200
  and DNS only; no ingress.

Every peer names its namespace (``kubernetes.io/metadata.name``): there is no empty
selector that would open a port to every namespace. Kubelet probes come from the node
and are not subject to these policies on common CNIs.

The pure functions return plain dicts (the objects as YAML holds them); the component
only turns them into ``pulumi_kubernetes`` resources, so tests and the evaluator in
``components.netpol_eval`` run over exactly what is deployed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.backup import backup_labels
from components.cluster_manifests import metadata
from components.netpol_eval import NAMESPACE_NAME_LABEL
from components.server_config import API_PORT, CLUSTER_PORT
from components.settings import Settings

DNS_PORT = 53


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


def _policy(settings: Settings, name: str, pod_labels: Mapping[str, str], *,
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
            "metadata": metadata(settings, name), "spec": spec}


def edge_peer(settings: Settings) -> Optional[dict[str, Any]]:
    """The pods that proxy public traffic to OpenBao, or None when nothing is published.

    nginx: the controller's namespace AND pod labels. Gateway API: the proxies' namespace
    (by default the Gateway's; implementations that run proxies elsewhere set
    ``ingress.gatewayProxyNamespace``), narrowed by ``ingress.gatewayProxyPodLabels`` when set.
    """
    ing = settings.ingress
    if ing.mode == "nginx":
        return _in_namespace(ing.controller_namespace, dict(ing.controller_pod_labels))
    if ing.mode == "gateway":
        return _in_namespace(ing.gateway_proxy_namespace or ing.gateway_namespace, dict(ing.gateway_proxy_pod_labels))
    return None


def api_client_peers(settings: Settings) -> list[dict[str, Any]]:
    """Everyone outside the OpenBao pods that may call the API on 8200."""
    peers: list[dict[str, Any]] = []
    edge = edge_peer(settings)
    if edge:
        peers.append(edge)
    peers.extend(_in_namespace(ns) for ns in settings.network.client_namespaces)
    if settings.backup.enabled:
        peers.append(_local_pods(backup_labels(settings)))
    if settings.monitoring.enabled:
        net = settings.network
        peers.append(_in_namespace(net.monitoring_namespace, dict(net.monitoring_pod_labels)))
    return peers


def _dns_egress(settings: Settings) -> dict[str, Any]:
    net = settings.network
    return {"to": [_in_namespace(net.dns_namespace, dict(net.dns_pod_labels))], "ports": _dns_ports()}


def default_deny_policy(settings: Settings) -> dict[str, Any]:
    """Deny all ingress and egress for every pod in the namespace."""
    return _policy(settings, f"{settings.name}-default-deny", {}, ingress=[], egress=[])


def server_policy(settings: Settings) -> dict[str, Any]:
    """The OpenBao pods' allowed flows."""
    ingress = [{"from": [_local_pods(settings.selector_labels)], "ports": _tcp(API_PORT, CLUSTER_PORT)}]
    clients = api_client_peers(settings)
    if clients:
        ingress.append({"from": clients, "ports": _tcp(API_PORT)})
    egress = [
        _dns_egress(settings),
        {"to": [_local_pods(settings.selector_labels)], "ports": _tcp(API_PORT, CLUSTER_PORT)},
        {"to": [{"ipBlock": {"cidr": cidr}} for cidr in settings.network.kube_api_cidrs],
         "ports": _tcp(settings.network.kube_api_port)},
    ]
    return _policy(settings, f"{settings.name}-server", settings.selector_labels, ingress=ingress, egress=egress)


def backup_policy(settings: Settings) -> dict[str, Any]:
    """The backup job may reach OpenBao's API and DNS, and nothing may reach it."""
    egress = [_dns_egress(settings), {"to": [_local_pods(settings.selector_labels)], "ports": _tcp(API_PORT)}]
    return _policy(settings, f"{settings.name}-backup", backup_labels(settings), ingress=[], egress=egress)


def network_policies(settings: Settings) -> dict[str, dict[str, Any]]:
    """Every NetworkPolicy for the stack, keyed by role (used for child resource names)."""
    policies = {
        "default-deny": default_deny_policy(settings),
        "server": server_policy(settings),
    }
    if settings.backup.enabled:
        policies["backup"] = backup_policy(settings)
    return policies


@dataclass(frozen=True)
class NetworkPoliciesArgs:
    """Inputs of OpenBaoNetworkPolicies."""

    settings: Settings


class OpenBaoNetworkPolicies(pulumi.ComponentResource):
    """Default-deny plus the allow-list NetworkPolicies for one OpenBao cluster."""

    policy_names: pulumi.Output[list[str]]
    """Names of the NetworkPolicies created, in the OpenBao namespace."""

    def __init__(self, name: str, args: NetworkPoliciesArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("openbao:network:OpenBaoNetworkPolicies", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        created = [
            k8s.networking.v1.NetworkPolicy(f"{name}-{role}", metadata=obj["metadata"], spec=obj["spec"], opts=child)
            for role, obj in network_policies(args.settings).items()
        ]
        self.policy_names = pulumi.Output.all(*[p.metadata.name for p in created])
        self.register_outputs({"policy_names": self.policy_names})
