"""High availability of the OpenBao Raft cluster, for production stacks.

Raft needs a majority of voters: an odd count of at least 3 survives one loss, a
PodDisruptionBudget must never let voluntary evictions take the majority, replicas must
land on different nodes (required anti-affinity) and spread over zones, and updates must
be rolled by the operator (OnDelete) so a bad image cannot take down every voter in turn.

Which stacks are production: the policy config (``production: true``) *or* the stack itself.
The program labels the server StatefulSet ``openbao-platform/production: "true"`` when the
stack's ``production`` setting is on (openbao_platform/cluster_manifests.py), and a labelled
StatefulSet gets every HA rule whatever the policy config says, so a forgotten or wrong
``--policy-pack-config`` (``production: false``) cannot switch the HA checks off. The config
can only add stacks, never remove one; turning a rule off on purpose is an explicit
``enforcementLevel: disabled``.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Optional, Sequence

from ._k8s import (
    K8sObject, as_int, as_list, fmt, get_path, is_openbao_server, objects_of_kind, pod_template, selector_matches,
)
from ._rules import Config, ResourceCheck, resource_rule, stack_rule

HOST_KEY = "kubernetes.io/hostname"
ZONE_KEY = "topology.kubernetes.io/zone"

#: The label the program puts on a production stack's server StatefulSet (metadata.labels).
PRODUCTION_LABEL = "openbao-platform/production"

PRODUCTION_CONFIG = {
    "production": {
        "type": "boolean", "default": False,
        "description": f"Enforce the HA rules on every OpenBao StatefulSet (set true in the production stack's "
                       f"policy config). A StatefulSet labelled {PRODUCTION_LABEL}: \"true\" gets them either way.",
    },
}

_NOT_PRODUCTION = (f"HA rules apply to production stacks only: none of its OpenBao StatefulSets is labelled "
                   f"{PRODUCTION_LABEL}: \"true\" and the policy config does not say production: true")


def marked_production(obj: K8sObject) -> bool:
    """The program marked this StatefulSet as belonging to a production stack."""
    return obj.labels.get(PRODUCTION_LABEL) == "true"


def _production(obj: K8sObject, cfg: Config) -> bool:
    """Whether the HA rules judge this StatefulSet: the config says production, or its label does."""
    return bool(cfg["production"]) or marked_production(obj)


def _production_resource(cfg: Config, obj: K8sObject) -> Optional[str]:
    """Why the HA resource rules are off for this StatefulSet, or None."""
    return None if _production(obj, cfg) else _NOT_PRODUCTION


def _production_stack(cfg: Config, objects: Sequence[K8sObject]) -> Optional[str]:
    """Why the HA stack rule is off for this stack (no production StatefulSet in it), or None."""
    if cfg["production"] or any(is_openbao_server(o) and marked_production(o) for o in objects):
        return None
    return _NOT_PRODUCTION


def _replicas(obj: K8sObject) -> int:
    """spec.replicas; the API server's default is 1."""
    replicas = as_int(obj.spec.get("replicas"))
    return 1 if replicas is None else replicas


def _openbao_statefulset(check: ResourceCheck) -> ResourceCheck:
    """Run ``check`` only on the OpenBao server StatefulSet."""
    def wrapped(obj: K8sObject, cfg: Config) -> Iterator[str]:
        if is_openbao_server(obj):
            yield from check(obj, cfg)
    wrapped.__doc__ = check.__doc__
    return wrapped


@_openbao_statefulset
def check_replicas(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """An odd number of voters, at least 3."""
    n = _replicas(obj)
    if n < 3 or n % 2 == 0:
        yield (f"{obj.ref}: spec.replicas is {n}; Raft needs an odd number of at least 3 voters to survive "
               f"a failure (an even count tolerates no more than the odd count below it). Fix: set 3 or 5.")


def _own_selector(term: Mapping[str, Any], labels: Mapping[str, Any]) -> bool:
    """Whether an affinity/spread term's labelSelector selects the pod's own labels."""
    return selector_matches(term.get("labelSelector"), labels, missing_matches=False)


@_openbao_statefulset
def check_anti_affinity(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Required pod anti-affinity per node, so one node loss takes one voter."""
    pod = pod_template(obj)
    assert pod is not None
    terms = as_list(get_path(pod.spec, "affinity", "podAntiAffinity", "requiredDuringSchedulingIgnoredDuringExecution"))
    if not any(isinstance(t, Mapping) and t.get("topologyKey") == HOST_KEY and _own_selector(t, pod.labels)
               for t in terms):
        yield (f"{obj.ref}: {pod.path}.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution has no "
               f"term on {HOST_KEY} selecting the OpenBao pods, so two voters may share a node. Fix: add "
               f"{{topologyKey: {HOST_KEY}, labelSelector: {{matchLabels: <the pod's selector labels>}}}}.")


@_openbao_statefulset
def check_zone_spread(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Topology spread across zones, so one zone loss does not take the majority."""
    pod = pod_template(obj)
    assert pod is not None
    constraints = as_list(pod.spec.get("topologySpreadConstraints"))
    if not any(isinstance(t, Mapping) and t.get("topologyKey") == ZONE_KEY and _own_selector(t, pod.labels)
               for t in constraints):
        yield (f"{obj.ref}: {pod.path}.topologySpreadConstraints has none on {ZONE_KEY} selecting the OpenBao "
               f"pods. Fix: add {{topologyKey: {ZONE_KEY}, maxSkew: 1, whenUnsatisfiable: DoNotSchedule, "
               f"labelSelector: {{matchLabels: <the pod's selector labels>}}}}.")


@_openbao_statefulset
def check_on_delete(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Updates roll only when the operator deletes pods (standbys first, leader last)."""
    strategy = get_path(obj.spec, "updateStrategy", "type") or "RollingUpdate"
    if strategy != "OnDelete":
        yield (f"{obj.ref}: spec.updateStrategy.type is {fmt(strategy)}; a rolling update restarts voters "
               f"(the leader included) without regard to Raft health. Fix: set updateStrategy: {{type: OnDelete}} "
               f"and roll standbys first, the leader last.")


def _scaled(value: Any, n: int) -> Optional[int]:
    """An IntOrString as the disruption controller reads it (percentages round up)."""
    if isinstance(value, str) and value.endswith("%") and value[:-1].isdigit():
        return math.ceil(int(value[:-1]) * n / 100)
    return as_int(value)


def _pdb_fix(n: int) -> str:
    """The PodDisruptionBudget setting that keeps quorum for ``n`` voters."""
    tolerable = (n - 1) // 2
    if tolerable < 1:
        return f"raise replicas to 3, then set maxUnavailable: 1 ({n} voter(s) tolerate no disruption)"
    return f"set maxUnavailable: {tolerable}"


def pdb_problem(pdb: K8sObject, n: int) -> Optional[str]:
    """Why a PodDisruptionBudget lets evictions break quorum for ``n`` voters, or None."""
    quorum, tolerable = n // 2 + 1, (n - 1) // 2
    min_available, max_unavailable = pdb.spec.get("minAvailable"), pdb.spec.get("maxUnavailable")
    if max_unavailable is not None:
        value = _scaled(max_unavailable, n)
        if value is None or value > tolerable:
            return (f"spec.maxUnavailable is {fmt(max_unavailable)}; with {n} voters at most {tolerable} may be "
                    f"down. Fix: {_pdb_fix(n)}")
        return None
    if min_available is not None:
        value = _scaled(min_available, n)
        if value is None or value < quorum:
            return (f"spec.minAvailable is {fmt(min_available)}; {n} voters need {quorum} up for quorum. "
                    f"Fix: set minAvailable: {quorum}, or {_pdb_fix(n)}")
        return None
    return f"sets neither minAvailable nor maxUnavailable. Fix: {_pdb_fix(n)}"


def check_pdb(objects: Sequence[K8sObject], cfg: Config) -> Iterator[tuple[K8sObject, str]]:
    """A PodDisruptionBudget selects the OpenBao pods and keeps quorum."""
    pdbs = objects_of_kind(objects, "PodDisruptionBudget")
    for sts in objects:
        if not is_openbao_server(sts) or not _production(sts, cfg):
            continue
        pod = pod_template(sts)
        assert pod is not None
        n = _replicas(sts)
        matching = [p for p in pdbs if p.namespace == sts.namespace
                    and selector_matches(p.spec.get("selector"), pod.labels, missing_matches=False)]
        if not matching:
            yield sts, (f"{sts.ref}: no PodDisruptionBudget selects its pods, so a node drain may evict a majority "
                        f"of voters at once. Fix: add a PodDisruptionBudget in {sts.namespace} with the pod's "
                        f"selector labels; {_pdb_fix(n)}.")
        for pdb in matching:
            problem = pdb_problem(pdb, n)
            if problem:
                yield pdb, f"{pdb.ref} (for {sts.ref}): {problem}."


_STATEFULSET = ("StatefulSet",)

POLICIES = [
    resource_rule(
        "ha-raft-replicas",
        "Production: the OpenBao StatefulSet runs an odd number of replicas, at least 3.",
        "medium", _STATEFULSET, check_replicas, PRODUCTION_CONFIG, applies=_production_resource),
    stack_rule(
        "ha-quorum-pdb",
        "Production: a PodDisruptionBudget selects the OpenBao pods and keeps quorum "
        "(maxUnavailable <= (n-1)/2 or minAvailable >= n/2+1).",
        "high", check_pdb, PRODUCTION_CONFIG, applies=_production_stack),
    resource_rule(
        "ha-pod-anti-affinity",
        "Production: required podAntiAffinity on kubernetes.io/hostname between OpenBao pods.",
        "medium", _STATEFULSET, check_anti_affinity, PRODUCTION_CONFIG, applies=_production_resource),
    resource_rule(
        "ha-zone-spread",
        "Production: topologySpreadConstraints on topology.kubernetes.io/zone for the OpenBao pods.",
        "medium", _STATEFULSET, check_zone_spread, PRODUCTION_CONFIG, applies=_production_resource),
    resource_rule(
        "ha-ondelete-updates",
        "Production: the OpenBao StatefulSet uses updateStrategy OnDelete (operator-ordered restarts).",
        "medium", _STATEFULSET, check_on_delete, PRODUCTION_CONFIG, applies=_production_resource),
]
