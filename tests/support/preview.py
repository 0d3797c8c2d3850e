"""The stack variants whose first preview the tests check, and what a mandatory rule inspects.

A variant is a stack file plus ``--set``-style overrides (what ``tools.render --set`` takes).
``preview_run`` runs the program the way the engine runs the first preview of a new stack
(``run_program(..., preview=True)``, see ``tests/support/program.PreviewMocks``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from tests.support.program import ProgramRun, apply_override, run_program, stack_config

#: id -> (stack, overrides). Both stacks, each in its own edge mode and in gateway mode.
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "prod": ("prod", {}),
    "dev": ("dev", {}),
    "prod-gateway": ("prod", {"ingress.mode": "gateway"}),
    "dev-gateway": ("dev", {"ingress.mode": "gateway", "ingress.host": "bao.dev.example.com"}),
}

#: Kinds a mandatory rule of the pack inspects: in a first preview every object of these kinds
#: must be fully known, or the rule would be downgraded to "can't run during preview".
INSPECTED_KINDS = frozenset({
    "StatefulSet", "CronJob", "Role", "RoleBinding", "ClusterRoleBinding", "NetworkPolicy", "Ingress",
    "HTTPRoute", "BackendTLSPolicy", "Service", "PodDisruptionBudget", "ServiceMonitor", "ServiceAccount",
})


def variant_config(variant: str) -> tuple[str, dict[str, Any]]:
    """(stack, raw config) of a variant: the stack file with the overrides applied."""
    stack, overrides = VARIANTS[variant]
    raw = stack_config(stack)
    for key, value in overrides.items():
        apply_override(raw, key, value)
    return stack, raw


@lru_cache(maxsize=None)
def preview_run(variant: str) -> ProgramRun:
    """The variant's first-preview run (cached: the tests only read it)."""
    stack, raw = variant_config(variant)
    return run_program(stack, raw, preview=True)


@lru_cache(maxsize=None)
def up_run(variant: str) -> ProgramRun:
    """The same variant as ``pulumi up`` runs it (every output known)."""
    stack, raw = variant_config(variant)
    return run_program(stack, raw)


def object_key(reg: Any) -> str:
    """How the tests name a registration: ``Kind name`` for Kubernetes objects, else
    ``type-token pulumi-name``."""
    props = reg.plain_props
    if reg.type.startswith("kubernetes:") and isinstance(props.get("metadata"), dict):
        return f"{props.get('kind')} {props['metadata'].get('name')}"
    return f"{reg.type} {reg.name}"
