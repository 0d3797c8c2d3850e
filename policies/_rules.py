"""Glue between rule functions and pulumi_policy.

Rules are written as plain generators that yield violation messages, so each module states
only *what* it checks. This module turns them into ``ResourceValidationPolicy`` /
``StackValidationPolicy`` objects and owns three things once:

* config: every tunable is declared once (JSON schema with its ``default``); the same
  declaration builds ``config_schema`` and fills in defaults at run time, because the
  engine does not always send them (e.g. ``Configure`` without properties);
* severity: pulumi-policy >= 1.18 has a ``severity`` field; older SDKs allowed by
  requirements.txt do not, so there the severity goes in front of the description;
* enforcement: every rule is mandatory unless stated;
* preview unknowns: every check runs inside ``deferring_unknowns`` (see ``_k8s``), so a rule
  that steps over an unknown value still checks the rest and then reports honestly that it
  could not check everything.
"""

from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping, Optional, Sequence

import pulumi_policy
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from ._k8s import K8sObject, deferring_unknowns, kind_of

Config = Mapping[str, Any]
#: A resource rule: one object (already filtered by kind) and its config -> messages.
ResourceCheck = Callable[[K8sObject, Config], Iterable[str]]
#: A stack rule: every resource in the stack and its config -> (object, message) pairs.
StackCheck = Callable[[Sequence[K8sObject], Config], Iterable[tuple[Optional[K8sObject], str]]]
#: Why a resource rule is off for this object and config (None: it applies).
ResourceApplies = Callable[[Config, K8sObject], Optional[str]]
#: Why a stack rule is off for this stack and config (None: it applies).
StackApplies = Callable[[Config, Sequence[K8sObject]], Optional[str]]

SEVERITIES = ("low", "medium", "high", "critical")
_HAS_SEVERITY = hasattr(pulumi_policy, "Severity")


def _schema(config: Optional[Mapping[str, Mapping[str, Any]]]) -> Optional[PolicyConfigSchema]:
    """The config_schema the engine shows and validates policy config files against."""
    return PolicyConfigSchema(properties={k: dict(v) for k, v in config.items()}) if config else None


def settings(raw: Mapping[str, Any], config: Optional[Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """Configured values over the declared defaults, coerced to the declared types.

    The engine sends config through a protobuf Struct, where every number is a float.
    """
    out: dict[str, Any] = {}
    for key, spec in (config or {}).items():
        value = raw.get(key, spec.get("default"))
        if spec.get("type") == "integer" and isinstance(value, float):
            value = int(value)
        if spec.get("type") == "array" and value is not None:
            value = list(value)
        out[key] = value
    return out


def _metadata(severity: str, description: str) -> tuple[str, dict[str, Any]]:
    """(description, extra Policy kwargs): the severity field, or a prefix on old SDKs."""
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}")
    if _HAS_SEVERITY:
        return description, {"severity": pulumi_policy.Severity(severity)}
    return f"[{severity}] {description}", {}


def _not_applicable(args: Any, reason: str) -> None:
    """Tell the engine the rule does not apply (SDKs before 1.18 have no such call)."""
    if hasattr(args, "not_applicable"):
        args.not_applicable(reason)


def resource_rule(
    name: str,
    description: str,
    severity: str,
    kinds: Iterable[str],
    check: ResourceCheck,
    config: Optional[Mapping[str, Mapping[str, Any]]] = None,
    resource_types: Iterable[str] = (),
    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
    applies: Optional[ResourceApplies] = None,
) -> ResourceValidationPolicy:
    """A per-resource rule over Kubernetes ``kinds`` (and/or exact ``resource_types``).

    ``applies`` may return a reason why the rule is off for this object and configuration.
    """
    kind_set, type_set = frozenset(kinds), frozenset(resource_types)
    text, extra = _metadata(severity, description)

    def validate(args: ResourceValidationArgs, report: ReportViolation) -> None:
        kind = kind_of(args.resource_type)
        if args.resource_type not in type_set and (kind is None or kind not in kind_set):
            return
        cfg = settings(args.get_config(), config)
        obj = K8sObject(args.resource_type, args.name, args.urn, args.props)
        reason = applies(cfg, obj) if applies else None
        if reason:
            _not_applicable(args, reason)
            return
        with deferring_unknowns():
            for message in check(obj, cfg):
                report(message, None)

    return ResourceValidationPolicy(name=name, description=text, validate=validate,
                                    enforcement_level=enforcement_level, config_schema=_schema(config), **extra)


def stack_rule(
    name: str,
    description: str,
    severity: str,
    check: StackCheck,
    config: Optional[Mapping[str, Mapping[str, Any]]] = None,
    enforcement_level: EnforcementLevel = EnforcementLevel.MANDATORY,
    applies: Optional[StackApplies] = None,
) -> StackValidationPolicy:
    """A rule over the whole stack; each violation is attached to the offending resource."""
    text, extra = _metadata(severity, description)

    def validate(args: StackValidationArgs, report: ReportViolation) -> None:
        cfg = settings(args.get_config(), config)
        objects = [K8sObject(r.resource_type, r.name, r.urn, r.props) for r in args.resources]
        reason = applies(cfg, objects) if applies else None
        if reason:
            _not_applicable(args, reason)
            return
        with deferring_unknowns():
            for obj, message in check(objects, cfg):
                report(message, obj.urn if obj is not None else None)

    return StackValidationPolicy(name=name, description=text, validate=validate,
                                 enforcement_level=enforcement_level, config_schema=_schema(config), **extra)
