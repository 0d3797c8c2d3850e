"""Which old-state URN the engine matches each registered resource to (its URN, or an alias).

No engine runs here, so this follows the engine's own rules, step by step, from
pulumi/pulumi pkg/resource/deploy/step_generator.go at 1b59498: ``getOldResource`` (look up
the URN first, then every alias, in order; remember a matched alias so children can use
it), ``generateAliases`` (the resource's aliases, plus each inherited from the parent's
matched alias), ``collapseAliasToUrn`` and ``inheritedChildAlias`` (a child named
``<parent name>-x`` follows a renamed parent). Resources must arrive in registration order,
as the engine sees them (a parent before its children).
"""

from __future__ import annotations

from typing import Any, Iterable, Optional

from tests.support.program import Registration

ROOT_STACK = "pulumi:pulumi:Stack"


def _parts(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name) of ``urn:pulumi:stack::project::qtype::name``."""
    stack, project, qualified, name = urn[len("urn:pulumi:"):].split("::", 3)
    return stack, project, qualified, name


def _create_urn(stack: str, project: str, parent: str, typ: str, name: str) -> str:
    """resource.CreateURN / NewURN: the parent's full qualified type, then this type."""
    qualified = typ
    if parent:
        parent_qualified = _parts(parent)[2]
        if parent_qualified != ROOT_STACK:
            qualified = f"{parent_qualified}${typ}"
    return f"urn:pulumi:{stack}::{project}::{qualified}::{name}"


class AliasResolver:
    """Replays the engine's old-resource lookup over one program run."""

    def __init__(self, olds: Iterable[str]) -> None:
        self.olds = set(olds)
        self.aliases: dict[str, str] = {}  # new URN -> the old URN it matched through an alias
        self.matched: dict[str, Optional[str]] = {}

    def _collapse(self, reg: Registration, alias: dict[str, Any]) -> str:
        if alias.get("urn"):
            return alias["urn"]
        stack, project, _, _ = _parts(reg.urn)
        parent = alias.get("parentUrn") or reg.options["parent"]
        if alias.get("parentUrn") and parent in self.aliases:
            parent = self.aliases[parent]
        if alias.get("noParent") or (parent and _parts(parent)[2] == ROOT_STACK):
            parent = ""
        return _create_urn(alias.get("stack") or stack, alias.get("project") or project, parent,
                           alias.get("type") or reg.type, alias.get("name") or reg.name)

    def _inherited(self, child_type: str, child_name: str, parent_name: str, parent_alias: str) -> str:
        stack, project, _, alias_name = _parts(parent_alias)
        name = alias_name + child_name[len(parent_name):] if child_name.startswith(parent_name) else child_name
        return _create_urn(stack, project, parent_alias, child_type, name)

    def candidates(self, reg: Registration) -> list[str]:
        """The URN, then the aliases, in the order the engine tries them."""
        own = [self._collapse(reg, a) for a in reg.options["aliases"]]
        result = list(own)
        parent = reg.options["parent"]
        if parent and parent in self.aliases:
            parent_name, parent_alias = _parts(parent)[3], self.aliases[parent]
            result.append(self._inherited(reg.type, reg.name, parent_name, parent_alias))
            for urn in own:
                _, _, qualified, name = _parts(urn)
                result.append(self._inherited(qualified.split("$")[-1], name, parent_name, parent_alias))
        return [reg.urn] + list(dict.fromkeys(result))

    def resolve(self, registrations: Iterable[Registration]) -> dict[str, Optional[str]]:
        """New URN -> the old URN it takes over (None: a create)."""
        for reg in registrations:
            found = next((u for u in self.candidates(reg) if u in self.olds), None)
            if found and found != reg.urn:
                self.aliases[reg.urn] = found
            self.matched[reg.urn] = found
        return self.matched
