"""No refactor re-creates state: every URN a deployed stack holds is still matched.

tests/urns_before_packaging.json lists every URN of both stacks as they were deployed
before the components became a Pulumi package. Replaying the engine's old-resource lookup
(tests/support/aliases.py, cited there) over today's program must match each of them to
exactly one resource, by its URN or an alias: an unmatched old URN would be a delete (and,
for the resource that should have matched it, a create of fresh state).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.aliases import AliasResolver
from tests.support.program import ProgramRun, Registration, run_program, stack_config

BEFORE = json.loads(Path(__file__).with_name("urns_before_packaging.json").read_text())


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_every_deployed_urn_is_still_matched(stack: str, prod_run: ProgramRun, dev_run: ProgramRun) -> None:
    run = prod_run if stack == "prod" else dev_run
    olds = BEFORE[stack]
    matched = AliasResolver(olds).resolve(run.registrations)
    taken = [old for old in matched.values() if old]
    # Each deployed URN is taken over by exactly one resource: none is deleted. Resources added
    # since (matching no old URN) are plain creates.
    assert sorted(taken) == sorted(olds), {"deleted": sorted(set(olds) - set(taken))}


def test_stacks_named_after_the_old_platform_name_keep_their_keys() -> None:
    """Before the platform's resource name was fixed, every resource name began with `name`."""
    raw = stack_config("prod")
    raw["name"] = "vault"
    run = run_program("prod", raw)
    # The URNs such a stack holds: the same tree, each resource name starting "vault" instead.
    olds = {old.rsplit("::", 1)[0] + "::" + "vault" + old.rsplit("::", 1)[1][len("openbao"):]
            for old in BEFORE["prod"]}
    matched = AliasResolver(olds).resolve(run.registrations)
    kept = [r for r in run.registrations if r.options.get("protect") or r.type.startswith(("tls:", "random:"))]
    assert len(kept) == 11
    for reg in kept:
        assert matched[reg.urn] in olds and "::vault" in matched[reg.urn], reg.name


def _reg(urn: str, typ: str, name: str, parent: str, aliases: list[dict[str, str]]) -> Registration:
    return Registration(type=typ, name=name, props={}, custom=True, urn=urn,
                        options={"aliases": aliases, "parent": parent})


STACK = "urn:pulumi:s::p::pulumi:pulumi:Stack::p-s"


def test_resolver_follows_the_engine_rules() -> None:
    """A renamed, re-typed parent carries its children; without an alias they are created."""
    parent = _reg("urn:pulumi:s::p::new:index:Comp::app", "new:index:Comp", "app", STACK,
                  [{"type": "old:mod:Comp", "name": "legacy"}])
    child = _reg("urn:pulumi:s::p::new:index:Comp$random:index/randomBytes:RandomBytes::app-key",
                 "random:index/randomBytes:RandomBytes", "app-key", parent.urn, [])
    old_parent = "urn:pulumi:s::p::old:mod:Comp::legacy"
    old_child = "urn:pulumi:s::p::old:mod:Comp$random:index/randomBytes:RandomBytes::legacy-key"
    assert AliasResolver([old_parent, old_child]).resolve([parent, child]) == {
        parent.urn: old_parent, child.urn: old_child}
    bare = _reg(parent.urn, parent.type, parent.name, STACK, [])
    bare_child = _reg(child.urn, child.type, child.name, bare.urn, [])
    assert AliasResolver([old_parent, old_child]).resolve([bare, bare_child]) == {
        bare.urn: None, bare_child.urn: None}
