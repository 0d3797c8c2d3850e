"""Network: OpenBao's namespace denies by default, and its ports are not open to all.

Kubernetes allows all traffic until a NetworkPolicy selects a pod, so the namespace that
runs OpenBao needs a default-deny for both directions, with explicit allows on top. The
API port (8200) must never be open to every namespace, and the cluster port (8201, Raft
and request forwarding) must only be reachable from the OpenBao server pods themselves.
These are stack rules: they need the workloads and the policies together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional, Sequence

from ._k8s import (
    K8sObject,
    as_int,
    as_list,
    as_str_list,
    container_ports,
    fmt,
    get_path,
    is_openbao_pod,
    is_openbao_server,
    objects_of_kind,
    pod_template,
    selector_is_empty,
    selector_matches,
)
from ._rules import Config, stack_rule

EVERYWHERE = ("0.0.0.0/0", "::/0")


@dataclass(frozen=True)
class PodGroup:
    """The pods one workload runs: where, with which labels and named ports."""

    workload: K8sObject
    namespace: str
    labels: Mapping[str, Any]
    ports: Mapping[str, int]
    openbao_server: bool


def pod_groups(objects: Sequence[K8sObject]) -> list[PodGroup]:
    """Every workload's pods in the stack."""
    groups = []
    for obj in objects:
        pod = pod_template(obj)
        if pod is not None:
            groups.append(PodGroup(obj, obj.namespace, pod.labels, container_ports(pod), is_openbao_server(obj)))
    return groups


def _policy_types(policy: K8sObject) -> list[str]:
    """policyTypes, with the API server's defaulting when it is omitted."""
    types = as_str_list(policy.spec.get("policyTypes"))
    if types:
        return types
    return ["Ingress", "Egress"] if policy.spec.get("egress") else ["Ingress"]


def check_default_deny(objects: Sequence[K8sObject], cfg: Config) -> Iterator[tuple[Optional[K8sObject], str]]:
    """Each namespace that runs OpenBao has deny-all ingress and deny-all egress."""
    namespaces: dict[str, K8sObject] = {}
    # The server StatefulSet first, so the violation is attached to it when there is one.
    for obj in sorted(objects, key=lambda o: not is_openbao_server(o)):
        pod = pod_template(obj)
        if pod is not None and is_openbao_pod(obj, pod):
            namespaces.setdefault(obj.namespace, obj)
    policies = objects_of_kind(objects, "NetworkPolicy")
    for ns, workload in sorted(namespaces.items()):
        denied = set()
        for policy in policies:
            if policy.namespace != ns or not selector_is_empty(policy.spec.get("podSelector", {})):
                continue
            for direction, field in (("Ingress", "ingress"), ("Egress", "egress")):
                if direction in _policy_types(policy) and not as_list(policy.spec.get(field)):
                    denied.add(direction)
        missing = [d for d in ("Ingress", "Egress") if d not in denied]
        if missing:
            yield workload, (f"{workload.ref} runs OpenBao in namespace {ns}, which has no default-deny "
                             f"NetworkPolicy for {' and '.join(missing)}; every pod there accepts "
                             f"{'and sends ' if 'Egress' in missing else ''}any traffic. Fix: add a NetworkPolicy "
                             f"in {ns} with podSelector: {{}}, policyTypes: [Ingress, Egress] and no rules.")


PORT_CONFIG = {
    "apiPort": {"type": "integer", "default": 8200, "description": "OpenBao API port."},
    "clusterPort": {"type": "integer", "default": 8201, "description": "OpenBao cluster (Raft) port."},
}


def _covers(rule: Mapping[str, Any], port: int, named: Mapping[str, int]) -> bool:
    """Whether an ingress rule's ports include ``port`` (no ports: every port)."""
    ports = as_list(rule.get("ports"))
    if not ports:
        return True
    for p in ports:
        if get_path(p, "protocol") not in (None, "TCP"):
            continue
        value = get_path(p, "port")
        if value is None:
            return True
        number = as_int(value) if as_int(value) is not None else named.get(str(value))
        end = as_int(get_path(p, "endPort")) or number
        if number is not None and number <= port <= end:
            return True
    return False


def _admits_everyone(peers: list[Any]) -> Optional[str]:
    """Why a `from` list admits every namespace, or None."""
    if not peers:
        return "has no `from`, so it admits every source"
    for k, peer in enumerate(peers):
        if isinstance(peer, Mapping) and selector_is_empty(peer.get("namespaceSelector")):
            return f"from[{k}].namespaceSelector is {{}}, which selects every namespace"
        if get_path(peer, "ipBlock", "cidr") in EVERYWHERE:
            return f"from[{k}].ipBlock.cidr is {fmt(get_path(peer, 'ipBlock', 'cidr'))}"
    return None


def _outside_servers(peers: list[Any], group: PodGroup, others: Sequence[PodGroup]) -> Optional[str]:
    """Why a `from` list admits something other than the OpenBao server pods, or None."""
    if not peers:
        return "has no `from`, so it admits every source"
    for k, peer in enumerate(peers):
        if not isinstance(peer, Mapping):
            continue
        if peer.get("ipBlock") is not None:
            return f"from[{k}] is an ipBlock"
        if peer.get("namespaceSelector") is not None:
            return f"from[{k}] has a namespaceSelector (pods of other namespaces)"
        selector = peer.get("podSelector")
        if selector is None or selector_is_empty(selector):
            return f"from[{k}].podSelector selects every pod in the namespace"
        if not selector_matches(selector, group.labels, missing_matches=True):
            return f"from[{k}].podSelector does not select the OpenBao server pods"
        strays = [o.workload.ref for o in others
                  if selector_matches(selector, o.labels, missing_matches=True)]
        if strays:
            return f"from[{k}].podSelector also selects the pods of {', '.join(strays)}"
    return None


def check_openbao_ports(objects: Sequence[K8sObject], cfg: Config) -> Iterator[tuple[K8sObject, str]]:
    """8200 is never open to every namespace; 8201 only to the OpenBao server pods."""
    groups = pod_groups(objects)
    api, cluster = cfg["apiPort"], cfg["clusterPort"]
    for policy in objects_of_kind(objects, "NetworkPolicy"):
        if "Ingress" not in _policy_types(policy):
            continue
        selector = policy.spec.get("podSelector", {})
        for group in groups:
            if not group.openbao_server or group.namespace != policy.namespace:
                continue
            if not selector_matches(selector, group.labels, missing_matches=True):
                continue
            others = [o for o in groups if o.namespace == group.namespace and o is not group]
            for i, rule in enumerate(as_list(policy.spec.get("ingress"))):
                if not isinstance(rule, Mapping):
                    continue
                peers = as_list(rule.get("from"))
                if _covers(rule, api, group.ports):
                    why = _admits_everyone(peers)
                    if why:
                        yield policy, (f"{policy.ref}: spec.ingress[{i}] opens port {api} of {group.workload.ref} and "
                                       f"{why}. Fix: list the client namespaces with a namespaceSelector on "
                                       f"kubernetes.io/metadata.name (and a podSelector).")
                if _covers(rule, cluster, group.ports):
                    why = _outside_servers(peers, group, others)
                    if why:
                        yield policy, (f"{policy.ref}: spec.ingress[{i}] opens cluster port {cluster} of "
                                       f"{group.workload.ref} and {why}. Fix: allow {cluster} only from a podSelector "
                                       f"that matches exactly the OpenBao server pods, in a rule of its own.")


POLICIES = [
    stack_rule(
        "network-default-deny",
        "Every namespace that runs OpenBao has a default-deny NetworkPolicy for Ingress and Egress "
        "(podSelector {}, both policyTypes, no rules).",
        "high", check_default_deny),
    stack_rule(
        "network-openbao-ports",
        "No NetworkPolicy opens the API port to every namespace (namespaceSelector {}, no `from`, 0.0.0.0/0), "
        "or the cluster port to anything but the OpenBao server pods.",
        "high", check_openbao_ports, PORT_CONFIG),
]
