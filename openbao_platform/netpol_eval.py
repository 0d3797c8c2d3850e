"""A small NetworkPolicy evaluator: is a flow admitted by a set of policies?

It works on the plain dicts our builders return (``networking.k8s.io/v1`` NetworkPolicy
as YAML holds it), so tests can ask "may Prometheus reach OpenBao on 8200?" instead of
asserting on the shape of a spec. It implements the Kubernetes semantics, including the
parts that are easy to get wrong:

* A pod is isolated for a direction only if some policy selecting it lists that
  direction in ``policyTypes``. Absent ``policyTypes`` defaults (like the API server's
  defaulting) to ``Ingress``, plus ``Egress`` only when ``egress`` has at least one rule
  (an empty ``egress: []`` does not isolate egress).
* Policies are additive (a union of allows); there is no deny rule.
* A rule with ``from``/``to`` missing *or empty* matches every peer; ``ports`` missing or
  empty matches every port and protocol.
* In one peer, ``namespaceSelector`` and ``podSelector`` are ANDed; separate peers are
  ORed. ``podSelector`` alone means the policy's own namespace; ``namespaceSelector: {}``
  means every namespace.
* ``ipBlock`` matches by address, honouring ``except``; it never matches a pod that has no
  address in the model.
* Ports carry a protocol (default TCP), may be named (resolved on the destination pod)
  and may be a range with ``endPort``.
* A flow needs egress allowed at the source *and* ingress allowed at the destination.

What it does not model: host-network pods, node/kubelet traffic (probes), Services (the
model is post-DNAT: address the backend pods), and CNI-specific extensions.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
INGRESS = "Ingress"
EGRESS = "Egress"


@dataclass(frozen=True)
class Pod:
    """A pod: where it lives, its labels, optionally its address and named ports."""

    namespace: str
    labels: Mapping[str, str] = field(default_factory=dict)
    ip: Optional[str] = None
    named_ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # name -> (port, protocol)


@dataclass(frozen=True)
class External:
    """An address that is not a pod (the internet, the API server, a node)."""

    ip: str


Endpoint = Union[Pod, External]


def selector_matches(selector: Optional[Mapping[str, Any]], labels: Mapping[str, str]) -> bool:
    """Kubernetes LabelSelector semantics; an empty selector matches everything."""
    if selector is None:
        raise ValueError("a missing selector has no meaning here; use {} to select everything")
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    return all(_requirement_matches(req, labels) for req in selector.get("matchExpressions") or [])


def _requirement_matches(req: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    key, op, values = req["key"], req["operator"], req.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":  # true when the label is absent, as in Kubernetes
        return labels.get(key) not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown label selector operator {op!r}")


def policy_types(policy: Mapping[str, Any]) -> set[str]:
    """Effective policyTypes, defaulted as the API server does when absent or empty."""
    spec = policy.get("spec") or {}
    declared = spec.get("policyTypes") or []
    if declared:
        return set(declared)
    return {INGRESS, EGRESS} if spec.get("egress") else {INGRESS}


class Cluster:
    """Namespaces (name -> labels) plus the NetworkPolicies in force."""

    def __init__(self, namespaces: Mapping[str, Mapping[str, str]], policies: Sequence[Mapping[str, Any]]) -> None:
        # Every namespace carries its immutable name label (Kubernetes >= 1.22).
        self.namespaces = {ns: {**labels, NAMESPACE_NAME_LABEL: ns} for ns, labels in namespaces.items()}
        for p in policies:
            if p.get("kind") != "NetworkPolicy":
                raise ValueError(f"not a NetworkPolicy: {p.get('kind')!r}")
            if not (p.get("metadata") or {}).get("namespace"):
                raise ValueError(f"NetworkPolicy {p.get('metadata', {}).get('name')!r} has no namespace")
        self.policies = list(policies)

    # -- public API ---------------------------------------------------------------------

    def allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """True when both the source's egress and the destination's ingress admit the flow."""
        return self.egress_allowed(src, dst, port, protocol) and self.ingress_allowed(src, dst, port, protocol)

    def egress_allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Egress side only; a non-pod source has no egress policy."""
        if not isinstance(src, Pod):
            return True
        return self._direction_allows(src, EGRESS, "egress", "to", peer=dst, port_owner=dst,
                                      port=port, protocol=protocol)

    def ingress_allowed(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Ingress side only; a non-pod destination has no ingress policy."""
        if not isinstance(dst, Pod):
            return True
        return self._direction_allows(dst, INGRESS, "ingress", "from", peer=src, port_owner=dst,
                                      port=port, protocol=protocol)

    def isolated(self, pod: Pod, direction: str) -> bool:
        """Whether any policy isolates the pod for ``direction`` (Ingress or Egress)."""
        return any(direction in policy_types(p) for p in self._selecting(pod))

    # -- internals ----------------------------------------------------------------------

    def _selecting(self, pod: Pod) -> Iterable[Mapping[str, Any]]:
        for p in self.policies:
            spec = p.get("spec") or {}
            if p["metadata"]["namespace"] == pod.namespace and selector_matches(spec.get("podSelector", {}), pod.labels):
                yield p

    def _direction_allows(self, subject: Pod, direction: str, rules_key: str, peers_key: str, *,
                          peer: Endpoint, port_owner: Endpoint, port: int, protocol: str) -> bool:
        applicable = [p for p in self._selecting(subject) if direction in policy_types(p)]
        if not applicable:
            return True  # not isolated in this direction
        for p in applicable:
            for rule in (p.get("spec") or {}).get(rules_key) or []:
                if (self._peers_match(rule.get(peers_key), peer, p["metadata"]["namespace"])
                        and _ports_match(rule.get("ports"), port_owner, port, protocol)):
                    return True
        return False

    def _peers_match(self, peers: Optional[Sequence[Mapping[str, Any]]], endpoint: Endpoint, policy_ns: str) -> bool:
        if not peers:  # missing or empty: every peer
            return True
        return any(self._peer_matches(peer, endpoint, policy_ns) for peer in peers)

    def _peer_matches(self, peer: Mapping[str, Any], endpoint: Endpoint, policy_ns: str) -> bool:
        has_selectors = "podSelector" in peer or "namespaceSelector" in peer
        if "ipBlock" in peer:
            if has_selectors:
                raise ValueError("a peer may hold ipBlock or selectors, not both")
            return _ip_block_matches(peer["ipBlock"], endpoint)
        if not has_selectors:
            raise ValueError("a peer needs podSelector, namespaceSelector or ipBlock")
        if not isinstance(endpoint, Pod):
            return False  # selectors only ever select pods
        if "namespaceSelector" in peer:
            ns_labels = self.namespaces.get(endpoint.namespace)
            if ns_labels is None or not selector_matches(peer["namespaceSelector"], ns_labels):
                return False
        elif endpoint.namespace != policy_ns:
            return False  # podSelector alone: the policy's own namespace
        return selector_matches(peer.get("podSelector", {}), endpoint.labels)


def _ip_block_matches(block: Mapping[str, Any], endpoint: Endpoint) -> bool:
    if endpoint.ip is None:
        return False
    addr = ipaddress.ip_address(endpoint.ip)
    cidr = ipaddress.ip_network(block["cidr"], strict=False)
    if addr.version != cidr.version or addr not in cidr:
        return False
    return not any(addr in ipaddress.ip_network(e, strict=False) for e in block.get("except") or []
                   if ipaddress.ip_network(e, strict=False).version == addr.version)


def _ports_match(ports: Optional[Sequence[Mapping[str, Any]]], owner: Endpoint, port: int, protocol: str) -> bool:
    if not ports:  # missing or empty: every port and protocol
        return True
    return any(_port_matches(p, owner, port, protocol) for p in ports)


def _port_matches(spec: Mapping[str, Any], owner: Endpoint, port: int, protocol: str) -> bool:
    if spec.get("protocol", "TCP") != protocol:
        return False
    wanted = spec.get("port")
    if wanted is None:
        return True  # every port of this protocol
    if isinstance(wanted, str):
        if "endPort" in spec:
            raise ValueError("endPort needs a numeric port")
        named = owner.named_ports.get(wanted) if isinstance(owner, Pod) else None
        return named == (port, protocol)
    end = spec.get("endPort", wanted)
    if end < wanted:
        raise ValueError(f"endPort {end} is below port {wanted}")
    return wanted <= port <= end
