"""What changing each settings key does to a live stack, computed from the program.

    python -m tools.change_impact --stack prod            # the per-key table (Markdown)
    python -m tools.change_impact                         # prod and dev side by side
    python -m tools.change_impact --key storage.dataSize  # only some keys
    python -m tools.change_impact --stack dev --details storage.dataSize
    python -m tools.change_impact --write-readme          # regenerate the README column

For every key the settings parser accepts (read off ``openbao_platform/settings.py``, not listed
here), the stack is rendered before and after a representative change (``SAMPLES``; each
sample is validated by the parser and must change the parsed Settings). Registrations are
matched by URN, or by an alias the new one carries, exactly as the engine looks up old state.
Each resource is then classified with the providers' vendored replacement rules
(``tools/provider_rules.json``, with the source path and commit of every rule):

* ``kubernetes:*``: the changed paths of the inputs (merge-patch semantics of the provider's
  ``convertPatchToDiff``) against the kind's force-new fields, ``.metadata.name`` and
  ``.metadata.namespace``, and the Secret/ConfigMap data rule that depends on
  ``kubernetes:enableSecretMutable`` / ``enableConfigMapMutable`` (read from the stack file, or
  from an explicit provider's inputs). A replaced object whose name and namespace stay the
  same is deleted first (the provider's ``deleteBeforeReplace``).
* ``tls:*`` / ``random:*``: per input, replace or update, as upstream's plan modifiers say.
* The engine: ``ignoreChanges``, ``replaceOnChanges``, ``replacementTrigger`` and
  ``deleteBeforeReplace`` options; a replace of a resource protected before and after, or a
  delete of a protected one, is refused; a delete-before-replace also replaces dependents
  (``dependsOn``) whose replace-on-any-change inputs could hang off the condemned outputs.

Freshly generated crypto would make every render differ (new keys and certificates each run).
Both renders therefore use *content-addressed* fakes for ``tls:*`` and ``random:*``
(``content_addressed_fakes``): each output is a hash of the resource's name and of exactly the
inputs whose change replaces it. Outputs stay equal when nothing would re-create the
resource, and change when it is replaced, so what hangs off them (the TLS Secret, the unseal
Secret, the CA bundle, the renewal alert) changes exactly when it would on a real stack: an
``earlyRenewalHours`` change updates the certificate in place and keeps its PEM, a SAN change
re-issues it and updates the Secret. No redaction is needed and no real keys are generated.

Limits, stated rather than hidden: the provider diffs against the *live* object pruned to the
old inputs, this tool against the old inputs (the same unless someone edited the object by
hand); clock-driven changes (a ``pulumi up`` inside the certificate's early-renewal window)
are not settings changes and are not shown; the cascade of a delete-before-replace uses the
resource-level dependency list, a superset of the property dependencies the engine uses.
"""

from __future__ import annotations

import argparse
import base64
import copy
import datetime as dt
import hashlib
import json
import re
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence
from unittest import mock

import yaml
from google.protobuf import json_format

from openbao_platform import settings as settings_module
from openbao_platform.settings import Settings, SettingsError, parse_settings
from tests.support import program
from tests.support.fakes import secret
from tests.support.program import ProgramRun, Registration, run_program, stack_config

ROOT = Path(__file__).resolve().parents[1]
RULES_PATH = Path(__file__).with_name("provider_rules.json")
RULES: dict[str, Any] = json.loads(RULES_PATH.read_text())
README = ROOT / "README.md"
STACKS = ("prod", "dev")
#: The README column this tool owns (the "Stack configuration" table).
COLUMN = "changing it on a live stack"

CREATE, DELETE, UPDATE, REPLACE, SAME = "create", "delete", "update", "replace", "same"
#: pulumi-kubernetes deletes with this propagation policy (read from the old state's inputs:
#: provider/pkg/metadata/overrides.go DeletionPropagation, provider/pkg/await/await.go Deletion).
K8S_DELETION_POLICY = "pulumi.com/deletionPropagationPolicy"
ORPHANED = "pods orphaned"
#: The API server, not the provider, decides a PVC size change: it may only grow, and only when
#: the StorageClass has allowVolumeExpansion (RULES["kubernetes"]["apiServer"]).
EXPANSION = "a volume expansion: the StorageClass must allow it"

# --------------------------------------------------------------------------------------
# Paths and the provider's force-new matching
# --------------------------------------------------------------------------------------

InputPath = tuple  # a changed input path: str keys and int list indexes


def parse_rule_path(path: str) -> tuple[str, ...]:
    """``.spec.containers[*].image`` -> ("spec", "containers", "*", "image")."""
    return tuple(p for p in path.replace("[*]", ".*").split(".") if p)


def show_path(path: Sequence[Any]) -> str:
    out = ""
    for p in path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.search(r'[."\[\]/]', p):
            out += f'["{p}"]'
        else:
            out += f".{p}" if out else p
    return out or "."


def _contains(value: Any, rest: Sequence[str]) -> bool:
    if not rest:
        return True
    head, tail = rest[0], rest[1:]
    if head == "*":
        return isinstance(value, list) and any(_contains(v, tail) for v in value)
    return isinstance(value, dict) and head in value and _contains(value[head], tail)


def rule_matches(rule: Sequence[str], path: Sequence[Any], kind: str, value: Any) -> bool:
    """Whether a force-new path matches a change, as ``openapi.PatchPropertiesChanged`` decides:
    the JSONPath is looked up in the patch sliced at the changed path, so it matches a change at
    or below it, or an added/updated subtree that contains it (a delete slices to null)."""
    for i, seg in enumerate(rule):
        if i >= len(path):
            return kind != DELETE and _contains(value, rule[i:])
        if seg == "*":
            if not isinstance(path[i], int):
                return False
        elif seg != path[i]:
            return False
    return True


def _equal(a: Any, b: Any) -> bool:
    """Value equality with the provider's number rule (int 3 == float 3.0) and no bool/int mixing."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return float(a) == float(b)
    return type(a) is type(b) and a == b


def input_changes(old: Any, new: Any, path: InputPath = ()) -> list[tuple[InputPath, str, Any]]:
    """Changed input paths as (path, kind, new value), kind add/delete/update.

    Maps recurse key by key, lists element by element (added or dropped tail elements are one
    change each), leaves compare by value: the shape of the provider's ``convertPatchToDiff``.
    """
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[tuple[InputPath, str, Any]] = []
        for k, v in new.items():
            if k not in old:
                out.append((path + (k,), "add", v))
            else:
                out += input_changes(old[k], v, path + (k,))
        out += [(path + (k,), DELETE, None) for k in old if k not in new]
        return out
    if isinstance(old, list) and isinstance(new, list):
        out = []
        for i in range(max(len(old), len(new))):
            if i >= len(old):
                out.append((path + (i,), "add", new[i]))
            elif i >= len(new):
                out.append((path + (i,), DELETE, None))
            else:
                out += input_changes(old[i], new[i], path + (i,))
        return out
    return [] if _equal(old, new) else [(path, UPDATE, new)]


# --------------------------------------------------------------------------------------
# The vendored rules
# --------------------------------------------------------------------------------------

K8S = RULES["kubernetes"]
BRIDGED = RULES["terraformBridged"]


def _expand(entries: Any) -> list[str]:
    if isinstance(entries, str):  # "@statefulSet": a shared list
        return _expand(K8S["shared"][entries[1:]])
    out: list[str] = []
    for e in entries:
        m = re.fullmatch(r"@(\w+)\((.+)\)", e)
        if m:  # "@labelSelector(.spec.selector)": the provider's helper functions
            out += [m.group(2) + suffix for suffix in K8S["macros"][m.group(1)]]
        else:
            out.append(e)
    return out


def _gvk(props: Mapping[str, Any]) -> tuple[str, str, str]:
    api = str(props.get("apiVersion") or "")
    group, _, version = api.rpartition("/")
    return group, version, str(props.get("kind") or "")


def force_new_paths(props: Mapping[str, Any], flags: Mapping[str, bool]) -> list[str]:
    """``forceNewProperties`` (pulumi-kubernetes provider/pkg/provider/diff.go) for one object."""
    group, version, kind = _gvk(props)
    paths = list(K8S["metadataForceNew"])
    table_group = "core" if group in K8S["coreGroups"] else group
    versions = K8S["forceNew"].get(table_group)
    if versions is None or version not in versions:
        return paths
    core = group in K8S["coreGroups"]
    immutable = props.get("immutable") is True
    if core and kind == "Secret" and (not flags.get(K8S["secretData"]["flag"]) or immutable):
        return paths + K8S["secretData"]["fields"]
    if kind in versions[version]:
        return paths + _expand(versions[version][kind])
    if core and kind == "ConfigMap" and (not flags.get(K8S["configMapData"]["flag"]) or immutable):
        return paths + K8S["configMapData"]["fields"]
    return paths


def stack_provider_flags(stack: str, root: Path = ROOT) -> dict[str, bool]:
    """``kubernetes:enableSecretMutable`` / ``enableConfigMapMutable`` of a stack file, read the
    way the provider reads them: on only for the string "true" (a YAML true reaches it so)."""
    doc = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text()) or {}
    config = doc.get("config") or {}
    return {flag: _flag_on(config.get(f"kubernetes:{flag}", config.get(f"kubernetes:config:{flag}")))
            for flag in (K8S["secretData"]["flag"], K8S["configMapData"]["flag"])}


def _flag_on(value: Any) -> bool:
    if isinstance(value, dict):
        value = value.get("value")
    if isinstance(value, bool):
        return value
    return value is not None and str(value) == "true"


# --------------------------------------------------------------------------------------
# URNs and aliases (the engine's lookup of old state)
# --------------------------------------------------------------------------------------


def split_urn(urn: str) -> tuple[str, str, str, str]:
    """(stack, project, qualified type, name)."""
    stack, project, qtype, name = urn[len("urn:pulumi:"):].split("::", 3)
    return stack, project, qtype, name


def make_urn(stack: str, project: str, parent_qtype: str, type_: str, name: str) -> str:
    qtype = f"{parent_qtype}${type_}" if parent_qtype else type_
    return f"urn:pulumi:{stack}::{project}::{qtype}::{name}"


def _parent(reg: Registration, regs: Sequence[Registration]) -> Optional[Registration]:
    """The component this resource is a child of, from its URN's type chain.

    The recorded options carry no parent; the type chain names the parent's qualified type, and
    our components are unique per type (else the one whose name prefixes the child's)."""
    qtype = split_urn(reg.urn)[2]
    if "$" not in qtype:
        return None
    parent_qtype = qtype.rsplit("$", 1)[0]
    found = [r for r in regs if r.urn and split_urn(r.urn)[2] == parent_qtype]
    if len(found) > 1:
        found = [r for r in found if reg.name.startswith(r.name)]
    return found[0] if len(found) == 1 else None


def alias_urns(reg: Registration, regs: Sequence[Registration], aliased: Mapping[str, str]) -> list[str]:
    """The URNs the engine tries after the resource's own (step_generator.go ``generateAliases``):
    each alias collapsed against the resource (``collapseAliasToUrn``), then the parent's alias
    multiplied out (``inheritedChildAlias``). ``aliased`` maps new URN -> old URN of parents."""
    stack, project, qtype, name = split_urn(reg.urn)
    parent = _parent(reg, regs)
    parent_qtype = qtype.rsplit("$", 1)[0] if "$" in qtype else ""
    out: list[str] = []

    def add(urn: str) -> None:
        if urn not in out:
            out.append(urn)

    collapsed: list[str] = []
    for alias in reg.options.get("aliases") or []:
        if alias.get("urn"):
            collapsed.append(alias["urn"])
            continue
        a_parent_qtype = parent_qtype
        if alias.get("parentUrn"):
            p = aliased.get(alias["parentUrn"], alias["parentUrn"])
            a_parent_qtype = split_urn(p)[2]
            if a_parent_qtype == "pulumi:pulumi:Stack":
                a_parent_qtype = ""
        if alias.get("noParent"):
            a_parent_qtype = ""
        collapsed.append(make_urn(alias.get("stack") or stack, alias.get("project") or project, a_parent_qtype,
                                  alias.get("type") or reg.type, alias.get("name") or name))
    for urn in collapsed:
        add(urn)
    if parent is not None and parent.urn in aliased:
        parent_alias = aliased[parent.urn]
        p_qtype, p_name = split_urn(parent_alias)[2], split_urn(parent_alias)[3]

        def inherited(child_type: str, child_name: str) -> str:
            if child_name.startswith(parent.name):
                child_name = p_name + child_name[len(parent.name):]
            return make_urn(stack, project, p_qtype, child_type, child_name)

        add(inherited(reg.type, name))
        for urn in collapsed:
            add(inherited(split_urn(urn)[2].rsplit("$", 1)[-1], split_urn(urn)[3]))
    return out


def match(before: Sequence[Registration], after: Sequence[Registration]
          ) -> tuple[list[tuple[Registration, Registration]], list[Registration], list[Registration]]:
    """(pairs, created, deleted): each new registration finds its old state by URN, then by alias."""
    olds = {r.urn: r for r in before}
    claimed: set[str] = set()
    aliased: dict[str, str] = {}
    pairs, created = [], []
    for reg in after:
        found = None
        for urn in [reg.urn] + alias_urns(reg, after, aliased):
            if urn in olds and urn not in claimed:
                found = olds[urn]
                if urn != reg.urn:
                    aliased[reg.urn] = urn
                break
        if found is None:
            created.append(reg)
        else:
            claimed.add(found.urn)
            pairs.append((found, reg))
    deleted = [r for r in before if r.urn not in claimed]
    return pairs, created, deleted


# --------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------


@dataclass
class ResourceChange:
    """What `pulumi up` would do to one resource."""

    action: str
    type: str
    name: str
    label: str
    urn: str
    paths: list[str] = field(default_factory=list)
    """Changed input paths."""
    replace_paths: list[str] = field(default_factory=list)
    """The changed paths that force the replacement."""
    delete_first: bool = False
    """A replacement that deletes the old object before creating the new one."""
    refused: bool = False
    """The engine refuses it: the resource is protected."""
    retained: bool = False
    """A delete that leaves the object in the cluster (retainOnDelete)."""
    template_changed: bool = False
    """A StatefulSet's pod template changed (pods only change through tools/rollout.py)."""
    options_changed: list[str] = field(default_factory=list)
    """Lifecycle options that changed (recorded in state, no provider call)."""
    notes: list[str] = field(default_factory=list)
    protected: bool = False
    """Protected in the new state."""
    custom: bool = True
    """False for a component resource (no provider: nothing happens to it)."""


_HASH_SUFFIX = re.compile(r"-[0-9a-f]{10}$")


def label(reg: Registration) -> str:
    """``Kind name`` for a Kubernetes object, ``Type pulumi-name`` for anything else."""
    props = reg.plain_props
    if reg.type.startswith("kubernetes:") and props.get("kind"):
        name = (props.get("metadata") or {}).get("name", reg.name)
        # A name that carries a content hash (the reconcile Job) is shown without it, so the
        # README column does not change with every edit of what is hashed.
        return f"{props['kind']} {_HASH_SUFFIX.sub('-<hash>', name)}"
    return f"{reg.type.rsplit(':', 1)[-1]} {reg.name}"


def _within(path: Sequence[Any], prefixes: Sequence[str]) -> bool:
    return any(rule_matches(parse_rule_path(p), path, UPDATE, None) for p in prefixes)


def _k8s_changes(old: Registration, new: Registration, flags: Mapping[str, bool]
                 ) -> tuple[list[str], list[str], bool, bool]:
    """(changed paths, replacing paths, delete first, pod template changed) of a k8s object."""
    changes = input_changes(old.plain_props, new.plain_props)
    ignore = new.options.get("ignoreChanges") or []
    changes = [c for c in changes if not _within(c[0], ignore)]
    rules = [parse_rule_path(p) for p in force_new_paths(new.plain_props, flags)]
    rules += [parse_rule_path(p) for p in new.options.get("replaceOnChanges") or []]
    replacing = [show_path(p) for p, kind, value in changes if any(rule_matches(r, p, kind, value) for r in rules)]
    old_meta, new_meta = old.plain_props.get("metadata") or {}, new.plain_props.get("metadata") or {}
    named = bool(new_meta.get("name")) and not new_meta.get("generateName")
    delete_first = (bool(replacing) and named and new_meta.get("name") == old_meta.get("name")
                    and new_meta.get("namespace") == old_meta.get("namespace"))
    template = new.plain_props.get("kind") == "StatefulSet" and any(p[:2] == ("spec", "template") for p, _, _ in changes)
    return [show_path(p) for p, _, _ in changes], replacing, delete_first, template


def _bridged_changes(old: Registration, new: Registration) -> tuple[list[str], list[str]]:
    """(changed inputs, replacing inputs) of a tls/random resource, per upstream's plan modifiers."""
    rules = BRIDGED["inputs"].get(new.type)
    if rules is None:
        raise KeyError(f"no replacement rules for {new.type} in {RULES_PATH.name}")
    o, n = old.plain_props, new.plain_props
    ignore = new.options.get("ignoreChanges") or []
    changed = sorted(k for k in set(o) | set(n) if k not in ignore and not _equal_tree(o.get(k), n.get(k)))
    unknown = [k for k in changed if k not in rules]
    if unknown:
        raise KeyError(f"{new.type} input(s) {unknown} have no rule in {RULES_PATH.name}: read the upstream schema")
    replace_on = set(new.options.get("replaceOnChanges") or [])
    return changed, [k for k in changed if rules[k] == REPLACE or k in replace_on]


def _equal_tree(a: Any, b: Any) -> bool:
    return not input_changes(a, b)


def _option_changes(old: Registration, new: Registration) -> list[str]:
    return [k for k in ("protect", "retainOnDelete") if bool(old.options.get(k)) != bool(new.options.get(k))]


def classify_pair(old: Registration, new: Registration, flags: Mapping[str, bool]) -> ResourceChange:
    """One resource present before and after: same, update or replace (or refused)."""
    change = ResourceChange(SAME, new.type, new.name, label(old), new.urn, options_changed=_option_changes(old, new),
                            custom=new.custom, protected=bool(new.options.get("protect")))
    if not new.custom:
        return change  # a component has no provider: nothing happens to it
    if new.type.startswith("kubernetes:"):
        paths, replacing, delete_first, template = _k8s_changes(old, new, flags)
    elif new.type.startswith("pulumi:providers:"):
        paths, replacing, delete_first, template = [show_path(p) for p, _, _ in input_changes(
            old.plain_props, new.plain_props)], [], False, False
    else:
        paths, replacing = _bridged_changes(old, new)
        delete_first, template = bool(BRIDGED["deleteBeforeReplace"]), False
    trigger_old, trigger_new = old.options.get("replacementTrigger"), new.options.get("replacementTrigger")
    if trigger_new is not None and not _equal_tree(trigger_old, trigger_new):
        paths.append("(replacementTrigger)")
        replacing.append("(replacementTrigger)")
    if not paths:
        return change
    change.paths, change.replace_paths = paths, replacing
    if replacing:
        change.action = REPLACE
        if new.options.get("deleteBeforeReplace"):
            delete_first = True
        change.delete_first = delete_first
        change.refused = bool(old.options.get("protect")) and bool(new.options.get("protect"))
        old_meta = old.plain_props.get("metadata") or {}
        if (old.plain_props.get("kind") == "StatefulSet"
                and str((old_meta.get("annotations") or {}).get(K8S_DELETION_POLICY, "")).lower() == "orphan"):
            change.notes.append(ORPHANED)
    else:
        change.action = UPDATE
        change.template_changed = template
        if new.plain_props.get("kind") == "PersistentVolumeClaim" and "spec.resources.requests.storage" in paths:
            change.notes.append(EXPANSION)
    return change


def classify(before: ProgramRun, after: ProgramRun, flags: Mapping[str, bool]) -> list[ResourceChange]:
    """Every resource's fate when the program goes from ``before`` to ``after``."""
    pairs, created, deleted = match(before.registrations, after.registrations)
    changes = [classify_pair(old, new, _flags_for(new, after.registrations, flags)) for old, new in pairs]
    changes += [ResourceChange(CREATE, r.type, r.name, label(r), r.urn, custom=r.custom) for r in created]
    for r in deleted:
        changes.append(ResourceChange(DELETE, r.type, r.name, label(r), r.urn, custom=r.custom,
                                      refused=bool(r.options.get("protect")),
                                      retained=bool(r.options.get("retainOnDelete"))))
    _cascade(changes, after.registrations, flags)
    return changes


def _flags_for(reg: Registration, regs: Sequence[Registration], flags: Mapping[str, bool]) -> Mapping[str, bool]:
    """An explicit provider's own enable*Mutable inputs, else the stack's default provider's."""
    ref = reg.options.get("provider") or ""  # "<provider urn>::<id>"
    if ref:
        prov_urn = ref.rsplit("::", 1)[0]
        for p in regs:
            if p.urn == prov_urn and p.type.startswith("pulumi:providers:"):
                props = p.plain_props
                return {k: _flag_on(props.get(k)) for k in flags}
    return flags


def _cascade(changes: list[ResourceChange], regs: Sequence[Registration], flags: Mapping[str, bool]) -> None:
    """A delete-before-replace condemns the old object first; the engine then re-diffs every
    dependent with the condemned outputs unknown (step_generator.go
    ``calculateDependentReplacements``). A Kubernetes dependent is replaced only if one of its
    force-new paths is a whole top-level input (an unknown top-level value slices to null, so
    deeper paths are not found); a tls/random dependent on any change. A protected one stops
    the update (TestDBRProtect)."""
    by_urn = {c.urn: c for c in changes}
    regs_by_urn = {r.urn: r for r in regs}
    queue = [c for c in changes if c.action == REPLACE and c.delete_first]
    while queue:
        root = queue.pop()
        for reg in regs:
            dep = by_urn.get(reg.urn)
            if dep is None or dep.action in (REPLACE, CREATE, DELETE) or not reg.custom:
                continue
            if root.urn not in (reg.options.get("dependsOn") or []):
                continue
            if reg.type.startswith("kubernetes:"):
                top = [p for p in force_new_paths(reg.plain_props, _flags_for(reg, regs, flags))
                       if len(parse_rule_path(p)) == 1]
                if not top:
                    continue
                dep.replace_paths = top
            elif reg.type.startswith(("tls:", "random:")):
                dep.replace_paths = ["(inputs from " + root.label + ")"]
            else:
                continue
            dep.action = REPLACE
            dep.delete_first = True
            dep.refused = bool(regs_by_urn[reg.urn].options.get("protect"))
            dep.notes.append(f"replaced with {root.label} (delete-before-replace cascade)")
            queue.append(dep)


# --------------------------------------------------------------------------------------
# Summary: what a reader of the README needs
# --------------------------------------------------------------------------------------


def _names(changes: Sequence[ResourceChange], limit: int = 5) -> str:
    """The labels, sorted (registration order varies between runs), or a count per kind."""
    labels = sorted(c.label for c in changes)
    if len(labels) <= limit:
        return ", ".join(labels)
    kinds: dict[str, int] = {}
    for lbl in labels:
        k = lbl.split(" ", 1)[0]
        kinds[k] = kinds.get(k, 0) + 1
    return f"{len(labels)} resources (" + ", ".join(f"{n} {k}" if n > 1 else k for k, n in sorted(kinds.items())) + ")"


def summarise(changes: Sequence[ResourceChange]) -> str:
    """``refused (protected: X)``, or the replaces/deletes/creates, ``in place`` and ``needs the
    rollout``, or ``state only (...)``, or ``no change``."""
    custom = [c for c in changes if c.custom]
    refused = [c for c in custom if c.refused]
    if refused:
        return f"refused (protected: {_names(refused, limit=8)})"
    parts = []
    replaced = [c for c in custom if c.action == REPLACE]
    if replaced:
        first = [c for c in replaced if c.delete_first and c.type.startswith("kubernetes:")]
        text = f"replaces {_names(replaced)}"
        notes = sorted({n for c in replaced for n in c.notes if n == ORPHANED})
        if first and len(replaced) == 1:
            text += " (" + ", ".join(["deleted first", *notes]) + ")"
        elif first and len(replaced) <= 5:
            text += " (" + "; ".join([", ".join(sorted(c.label.split(" ", 1)[0] for c in first)) + " deleted first",
                                      *notes]) + ")"
        elif first:
            text += " (" + "; ".join([f"{len(first)} deleted first", *notes]) + ")"
        parts.append(text)
    deleted = [c for c in custom if c.action == DELETE]
    if deleted:
        kept = [c for c in deleted if c.retained]
        parts.append(f"deletes {_names(deleted)}" + (f" ({len(kept)} kept in the cluster)" if kept else ""))
    created = [c for c in custom if c.action == CREATE]
    if created:
        parts.append(f"creates {_names(created)}")
    if any(c.template_changed for c in custom):
        parts.append("needs the rollout")
    elif not parts and any(c.action == UPDATE for c in custom):
        expanded = any(EXPANSION in c.notes for c in custom)
        parts.append("in place" + (f" ({EXPANSION})" if expanded else ""))
    toggled = [c for c in custom if "protect" in c.options_changed]
    state = [f"protection {'on' if on else 'off'} for {n} resources" for on in (True, False)
             if (n := sum(1 for c in toggled if c.protected == on))]
    if not parts:
        return f"state only: {', '.join(state)}" if state else "no change"
    return "; ".join(parts + state)


# --------------------------------------------------------------------------------------
# Content-addressed fakes: outputs change exactly when the resource would be re-created
# --------------------------------------------------------------------------------------

_EPOCH = dt.datetime(2027, 1, 1, tzinfo=dt.timezone.utc)


def _digest(type_: str, name: str, inputs: Mapping[str, Any], trigger: Any = None) -> str:
    """What identifies one incarnation of the resource: a change of any of it re-creates it."""
    rules = BRIDGED["inputs"].get(type_, {})
    replacing = {k: v for k, v in inputs.items() if rules.get(k, REPLACE) == REPLACE}
    blob = json.dumps([type_, name, replacing, trigger], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _pem(label_: str, h: str) -> str:
    return f"-----BEGIN {label_}-----\n{base64.b64encode(bytes.fromhex(h)).decode()}\n-----END {label_}-----\n"


def _validity(h: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
    start = _EPOCH + dt.timedelta(seconds=int(h[:8], 16) % 10_000_000)
    end = start + dt.timedelta(hours=int(inputs["validityPeriodHours"]))
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    return {"validityStartTime": start.strftime(fmt), "validityEndTime": end.strftime(fmt), "readyForRenewal": False}


def _fake(type_: str) -> Callable[[str, dict[str, Any]], dict[str, Any]]:
    def private_key(h: str, i: dict[str, Any]) -> dict[str, Any]:
        return {**i, "privateKeyPem": secret(_pem("PRIVATE KEY", h)), "privateKeyPemPkcs8": secret(_pem("PRIVATE KEY", h)),
                "publicKeyPem": _pem("PUBLIC KEY", h), "publicKeyOpenssh": f"ecdsa-sha2-fake {h}\n"}

    def self_signed(h: str, i: dict[str, Any]) -> dict[str, Any]:
        return {**i, "certPem": _pem("CERTIFICATE", h), **_validity(h, i), "privateKeyPem": secret(i["privateKeyPem"])}

    def csr(h: str, i: dict[str, Any]) -> dict[str, Any]:
        return {**i, "certRequestPem": _pem("CERTIFICATE REQUEST", h), "privateKeyPem": secret(i["privateKeyPem"])}

    def locally_signed(h: str, i: dict[str, Any]) -> dict[str, Any]:
        return {**i, "certPem": _pem("CERTIFICATE", h), **_validity(h, i), "caPrivateKeyPem": secret(i["caPrivateKeyPem"])}

    def random_bytes(h: str, i: dict[str, Any]) -> dict[str, Any]:
        raw = (bytes.fromhex(h) * (int(i["length"]) // 32 + 1))[: int(i["length"])]
        return {**i, "base64": secret(base64.b64encode(raw).decode()), "hex": secret(raw.hex())}

    def random_password(h: str, i: dict[str, Any]) -> dict[str, Any]:
        return {**i, "result": secret((h * 4)[: int(i["length"])]), "bcryptHash": secret("$2a$10$" + h[:53])}

    return {"tls:index/privateKey:PrivateKey": private_key, "tls:index/selfSignedCert:SelfSignedCert": self_signed,
            "tls:index/certRequest:CertRequest": csr, "tls:index/locallySignedCert:LocallySignedCert": locally_signed,
            "random:index/randomBytes:RandomBytes": random_bytes,
            "random:index/randomPassword:RandomPassword": random_password}[type_]


class _ContentAddressed(dict):
    """Type token -> fake, in the shape ``tests.support.program.FAKES`` has. The name of the
    resource being created is set per thread by the wrapped ``new_resource`` (the SDK calls the
    monitor from executor threads)."""

    def __init__(self, types: Sequence[str]) -> None:
        super().__init__({t: None for t in types})
        self.local = threading.local()

    def get(self, type_: str, default: Any = None) -> Any:  # noqa: D401 - dict API
        if type_ not in self:
            return default
        name, trigger = self.local.name, self.local.trigger
        return lambda inputs: _fake(type_)(_digest(type_, name, inputs, trigger), dict(inputs))


CONTENT_ADDRESSED = _ContentAddressed(list(BRIDGED["inputs"]))


@contextmanager
def content_addressed_fakes() -> Iterator[None]:
    """Swap the harness's crypto fakes for content-addressed ones for the duration.

    The monitor sees the request (name, ``replacement_trigger``) and calls the mocks on the
    same thread, so the fake can hash what re-creates the resource: its replacing inputs and
    its replacement trigger."""
    original = program.RecordingMonitor.RegisterResource

    def register(self: Any, request: Any) -> Any:
        CONTENT_ADDRESSED.local.name = request.name
        CONTENT_ADDRESSED.local.trigger = (json_format.MessageToDict(request.replacement_trigger)
                                           if request.HasField("replacement_trigger") else None)
        return original(self, request)

    with mock.patch.object(program, "FAKES", CONTENT_ADDRESSED), \
            mock.patch.object(program.RecordingMonitor, "RegisterResource", register):
        yield


# --------------------------------------------------------------------------------------
# Settings keys, read off the parser
# --------------------------------------------------------------------------------------


def settings_keys() -> list[str]:
    """Every key the settings parser accepts, in the order it reads them.

    Parses an empty config with a recording reader: the allowed lists of ``unknown_keys`` give
    the accepted keys (a section expands into its members), the ``get*`` calls the keys read;
    the two must agree, or a key is accepted but ignored (or read but rejected)."""
    accepted: dict[str, list[str]] = {}
    read: list[str] = []

    class Recording(settings_module._Reader):  # noqa: SLF001 - the parser's own reader
        def unknown_keys(self, path: str, allowed: Sequence[str]) -> None:
            accepted[path] = list(allowed)
            super().unknown_keys(path, allowed)

        def get(self, path: str, *args: Any, **kwargs: Any) -> Any:
            read.append(path)
            return super().get(path, *args, **kwargs)

        def get_str_list(self, path: str, *args: Any, **kwargs: Any) -> Any:
            read.append(path)
            return super().get_str_list(path, *args, **kwargs)

        def get_labels(self, path: str, *args: Any, **kwargs: Any) -> Any:
            read.append(path)
            return super().get_labels(path, *args, **kwargs)

    with mock.patch.object(settings_module, "_Reader", Recording):
        parse_settings({}, "keys")
    def expand(path: str) -> list[str]:  # a section (e.g. backup.remote) expands into its members
        return [k for member in accepted[path] for k in expand(f"{path}.{member}")] if path in accepted else [path]

    keys: list[str] = [k for top in accepted[""] for k in expand(top)]
    if set(keys) != set(read):
        raise AssertionError(f"settings.py accepts {sorted(set(keys) - set(read))} without reading them, "
                             f"or reads {sorted(set(read) - set(keys))} without accepting them")
    return keys


# --------------------------------------------------------------------------------------
# Representative changes
# --------------------------------------------------------------------------------------

UNSET = object()
"""A change value that removes the key (``pulumi config rm --path``)."""


@dataclass(frozen=True)
class Scenario:
    """A change of the stack config: ``change`` on top of ``context`` (applied before and after)."""

    change: Mapping[str, Any]
    context: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""


def _one(key: str, value: Any) -> list[Scenario]:
    return [Scenario({key: value})]


def _flip(key: str, current: bool) -> list[Scenario]:
    return _one(key, not current)


def _double(quantity: str) -> str:
    m = re.fullmatch(r"([0-9.]+)(.*)", quantity)
    assert m, quantity
    n = float(m.group(1)) * 2
    return f"{int(n) if n.is_integer() else n}{m.group(2)}"


def _other(current: Any, *choices: Any) -> Any:
    return next(c for c in choices if c != current)


def _gateway(s: Settings) -> dict[str, Any]:
    """Context: gateway mode (the gateway keys do nothing in the other modes)."""
    if s.ingress.mode == "gateway":
        return {}
    return {"ingress.mode": "gateway", **({} if s.ingress.host else {"ingress.host": "bao.example.com"})}


def _rotation(s: Settings) -> list[Scenario]:
    v = s.unseal.key_version
    rotating = {"unseal.keyVersion": v + 1, "unseal.previousKeyVersion": v}
    return [Scenario(rotating, label=f"start a rotation (keyVersion {v + 1} with previousKeyVersion {v})"),
            Scenario({"unseal.previousKeyVersion": UNSET}, context=rotating,
                     label="finish it (remove previousKeyVersion)")]


def _tls_source(s: Settings, key: str, value: str) -> list[Scenario]:
    """In nginx mode exactly one public TLS source is allowed: switching one means dropping the other."""
    other = "ingress.certManagerIssuer" if key == "ingress.tlsSecretName" else "ingress.tlsSecretName"
    other_set = s.ingress.cert_manager_issuer if key == "ingress.tlsSecretName" else s.ingress.tls_secret_name
    if s.ingress.mode == "nginx" and other_set:
        return [Scenario({key: value, other: UNSET}, label=f"switch to it from `{other.split('.')[1]}`")]
    return _one(key, value)


def _declared_tenants(s: Settings) -> dict[str, Any]:
    """The stack's tenants in the stack config's shape (a sample adds one)."""
    return {t.namespace: {"serviceAccounts": list(t.service_accounts)} for t in s.configuration.tenants}


def _declared_policies(s: Settings) -> dict[str, Any]:
    return {p.name: {path: list(caps) for path, caps in p.rules} for p in s.configuration.policies}


_ROLE_ARN = "arn:aws:iam::123456789012:role/openbao-backup"


def _remote(s: Settings) -> dict[str, Any]:
    """Context: backups on, uploading to a bucket (the backup.remote keys do nothing otherwise)."""
    ctx: dict[str, Any] = {} if s.backup.enabled else {"backup.enabled": True}
    if not s.self_init.enabled:
        ctx["selfInit.enabled"] = True
    if s.backup.remote.enabled:
        return ctx
    return {**ctx, "backup.remote.enabled": True, "backup.remote.endpoint": "https://s3.eu-west-1.amazonaws.com",
            "backup.remote.bucket": "acme-openbao-backups", "backup.remote.endpointCidrs": ["52.218.0.0/17"],
            "backup.remote.credentialsSecretName": "openbao-s3"}


def _in_remote(s: Settings, key: str, value: Any) -> list[Scenario]:
    ctx = _remote(s)
    return [Scenario({f"backup.remote.{key}": value}, context=ctx,
                     label="with backup.remote enabled" if ctx else "")]


def _drill(s: Settings, extra: Optional[dict[str, Any]] = None) -> dict[str, Any]:
    """Context: the bucket, and the restore drill on (the backup.drill keys do nothing otherwise)."""
    ctx = _remote(s)
    if not s.backup.drill.enabled:
        ctx = {**ctx, "backup.drill.enabled": True}
    if s.backup.drill.credentials_secret_name is None:
        ctx = {**ctx, "backup.drill.credentialsSecretName": "openbao-backup-drill"}
    return {**ctx, **(extra or {})}


def _in_drill(s: Settings, key: str, value: Any) -> list[Scenario]:
    ctx = _drill(s)
    return [Scenario({f"backup.drill.{key}": value}, context=ctx, label="with the restore drill on" if ctx else "")]


#: Key -> the representative change(s) of it for a stack's parsed settings.
SAMPLES: dict[str, Callable[[Settings], list[Scenario]]] = {
    "namespace": lambda s: _one("namespace", s.namespace + "-b"),
    "name": lambda s: _one("name", _other(s.name, "vault", "bao")),
    "production": lambda s: _flip("production", s.production),
    "protect": lambda s: _flip("protect", s.protect),
    "replicas": lambda s: _one("replicas", s.replicas + 2 if s.replicas <= 5 else s.replicas - 2),
    "tlsMinVersion": lambda s: _one("tlsMinVersion", _other(s.tls_min_version, "tls13", "tls12")),
    "image.repository": lambda s: _one("image.repository", "registry.example.com/openbao/openbao"),
    "image.tag": lambda s: _one("image.tag", _other(s.image.tag, "2.7.3", "2.7.4")),
    "image.digest": lambda s: _one("image.digest", "sha256:" + "0" * 64 if s.image.digest is None else UNSET),
    "image.pullPolicy": lambda s: _one("image.pullPolicy", _other(s.image.pull_policy, "Always", "IfNotPresent")),
    "storage.className": lambda s: _one("storage.className", _other(s.storage.class_name, "standard", "premium")),
    "storage.dataSize": lambda s: _one("storage.dataSize", _double(s.storage.data_size)),
    "storage.auditSize": lambda s: _one("storage.auditSize", _double(s.storage.audit_size)),
    "resources.cpuRequest": lambda s: _one("resources.cpuRequest", _double(s.resources.cpu_request)),
    "resources.memoryRequest": lambda s: _one("resources.memoryRequest", _double(s.resources.memory_request)),
    "resources.cpuLimit": lambda s: _one("resources.cpuLimit", _double(s.resources.cpu_limit)),
    "resources.memoryLimit": lambda s: _one("resources.memoryLimit", _double(s.resources.memory_limit)),
    "topology.zones": lambda s: _one("topology.zones", [*s.topology.zones, "eu-west-1d"] if s.topology.zones
                                     else ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
    "topology.zoneKey": lambda s: _one("topology.zoneKey", "example.com/zone"),
    "topology.hostKey": lambda s: _one("topology.hostKey", "example.com/host"),
    "topology.maxSkew": lambda s: _one("topology.maxSkew", s.topology.max_skew + 1),
    "pki.caValidityHours": lambda s: _one("pki.caValidityHours", s.pki.ca_validity_hours + 8760),
    "pki.serverValidityHours": lambda s: _one("pki.serverValidityHours", min(2 * s.pki.server_validity_hours, 9528)),
    "pki.earlyRenewalHours": lambda s: _one("pki.earlyRenewalHours", s.pki.early_renewal_hours // 2),
    "pki.keyAlgorithm": lambda s: _one("pki.keyAlgorithm", _other(s.pki.key_algorithm, "RSA", "ECDSA")),
    "pki.ecdsaCurve": lambda s: [Scenario({"pki.ecdsaCurve": _other(s.pki.ecdsa_curve, "P384", "P521")},
                                          context={} if s.pki.key_algorithm == "ECDSA" else {"pki.keyAlgorithm": "ECDSA"},
                                          label="" if s.pki.key_algorithm == "ECDSA" else "with keyAlgorithm ECDSA")],
    "pki.rsaBits": lambda s: [Scenario({"pki.rsaBits": _other(s.pki.rsa_bits, 4096, 3072)},
                                       context={} if s.pki.key_algorithm == "RSA" else {"pki.keyAlgorithm": "RSA"},
                                       label="" if s.pki.key_algorithm == "RSA" else "with keyAlgorithm RSA")],
    "pki.organization": lambda s: _one("pki.organization", _other(s.pki.organization, "example-org", "other-org")),
    "unseal.keyVersion": lambda s: [Scenario({"unseal.keyVersion": s.unseal.key_version + 1},
                                             label="alone, without previousKeyVersion")],
    "unseal.previousKeyVersion": _rotation,
    "selfInit.enabled": lambda s: [Scenario({"selfInit.enabled": not s.self_init.enabled},
                                            context={"backup.enabled": False} if s.backup.enabled else {},
                                            label="with backup.enabled false (backups need it)" if s.backup.enabled
                                            else "")],
    "selfInit.adminServiceAccount": lambda s: _one("selfInit.adminServiceAccount",
                                                   _other(s.self_init.admin_service_account, "ops-admin", "bao-admin")),
    "selfInit.userpassAdmin": lambda s: _flip("selfInit.userpassAdmin", s.self_init.userpass_admin),
    "selfInit.adminUsername": lambda s: _one("selfInit.adminUsername", _other(s.self_init.admin_username, "breakglass", "root2")),
    "selfInit.kvMount": lambda s: _one("selfInit.kvMount", _other(s.self_init.kv_mount, "kv", "secrets")),
    "selfInit.autopilotStabilization": lambda s: _one("selfInit.autopilotStabilization",
                                                      _other(s.self_init.autopilot_stabilization, "10s", "5s")),
    "selfInit.peerWaitSeconds": lambda s: _one("selfInit.peerWaitSeconds", s.self_init.peer_wait_seconds + 3),
    "ingress.mode": lambda s: ([Scenario({"ingress.mode": "gateway"},
                                         context={} if s.ingress.host else {"ingress.host": "bao.example.com"},
                                         label="to gateway" + ("" if s.ingress.host else ", with ingress.host set"))]
                               if s.ingress.mode != "gateway" else _one("ingress.mode", "none")),
    "ingress.host": lambda s: _one("ingress.host", _other(s.ingress.host, "bao2.example.com", "bao3.example.com")),
    "ingress.className": lambda s: _one("ingress.className", _other(s.ingress.class_name, "nginx-internal", "nginx")),
    "ingress.tlsSecretName": lambda s: _tls_source(s, "ingress.tlsSecretName", "openbao-public-tls"),
    "ingress.certManagerIssuer": lambda s: _tls_source(s, "ingress.certManagerIssuer",
                                                       _other(s.ingress.cert_manager_issuer, "letsencrypt-staging",
                                                              "letsencrypt-prod")),
    "ingress.certManagerIssuerKind": lambda s: _one("ingress.certManagerIssuerKind",
                                                    _other(s.ingress.cert_manager_issuer_kind, "Issuer", "ClusterIssuer")),
    "ingress.externalDns": lambda s: _flip("ingress.externalDns", s.ingress.external_dns),
    "ingress.controllerNamespace": lambda s: _one("ingress.controllerNamespace",
                                                  _other(s.ingress.controller_namespace, "ingress-system", "ingress-nginx")),
    "ingress.controllerPodLabels": lambda s: _one("ingress.controllerPodLabels",
                                                  {"app.kubernetes.io/name": "ingress-nginx-internal"}),
    "ingress.gatewayName": lambda s: [Scenario({"ingress.gatewayName": _other(s.ingress.gateway_name, "edge", "gw")},
                                               context=_gateway(s), label="in gateway mode" if _gateway(s) else "")],
    "ingress.gatewayNamespace": lambda s: [Scenario({"ingress.gatewayNamespace": _other(s.ingress.gateway_namespace,
                                                                                        "edge-system", "gw-system")},
                                                    context=_gateway(s), label="in gateway mode" if _gateway(s) else "")],
    "ingress.gatewayProxyNamespace": lambda s: [Scenario({"ingress.gatewayProxyNamespace": _other(
        s.ingress.gateway_proxy_namespace, "envoy-gateway-system", "gw-proxies")},
        context=_gateway(s), label="in gateway mode" if _gateway(s) else "")],
    "ingress.gatewayProxyPodLabels": lambda s: [Scenario({"ingress.gatewayProxyPodLabels": {"app.kubernetes.io/name": "envoy"}},
                                                         context=_gateway(s), label="in gateway mode" if _gateway(s) else "")],
    "network.clientNamespaces": lambda s: _one("network.clientNamespaces", [*s.network.client_namespaces, "reports"]),
    "tenants": lambda s: _one("tenants", {**_declared_tenants(s), "reports": {"serviceAccounts": ["app"]}}),
    "policies": lambda s: _one("policies", {**_declared_policies(s), "ci-read": {"secret/data/shared/*": ["read"]}}),
    "secretEngines": lambda s: _one("secretEngines", {**{e.name: {"type": e.type} for e in s.configuration.secret_engines},
                                                      "reports-kv": {"type": "kv-v2"}}),
    "configuration.schedule": lambda s: _one("configuration.schedule",
                                             _other(s.configuration.schedule, "*/10 * * * *", "*/30 * * * *")),
    "network.kubeApiCidrs": lambda s: _one("network.kubeApiCidrs", [*s.network.kube_api_cidrs, "10.0.0.20/32"]),
    "network.kubeApiPort": lambda s: _one("network.kubeApiPort", _other(s.network.kube_api_port, 6443, 443)),
    "network.dnsNamespace": lambda s: _one("network.dnsNamespace", _other(s.network.dns_namespace, "dns-system", "kube-dns")),
    "network.dnsPodLabels": lambda s: _one("network.dnsPodLabels", {"k8s-app": "coredns"}),
    "network.monitoringNamespace": lambda s: _one("network.monitoringNamespace",
                                                  _other(s.network.monitoring_namespace, "observability", "monitoring")),
    "network.monitoringPodLabels": lambda s: _one("network.monitoringPodLabels", {"app.kubernetes.io/name": "prometheus-agent"}),
    "audit.file": lambda s: [Scenario({"audit.file": not s.audit.file},
                                      context={"audit.stdout": True} if s.audit.file and not s.audit.stdout else {},
                                      label="with audit.stdout true (one device is required)"
                                      if s.audit.file and not s.audit.stdout else "")],
    "audit.stdout": lambda s: [Scenario({"audit.stdout": not s.audit.stdout},
                                        context={"audit.file": True} if s.audit.stdout and not s.audit.file else {})],
    "monitoring.enabled": lambda s: _flip("monitoring.enabled", s.monitoring.enabled),
    "monitoring.releaseLabel": lambda s: _one("monitoring.releaseLabel",
                                              _other(s.monitoring.release_label, "kube-prometheus", "prometheus")),
    "backup.enabled": lambda s: [Scenario({"backup.enabled": not s.backup.enabled},
                                          context={} if s.self_init.enabled else {"selfInit.enabled": True})],
    "backup.schedule": lambda s: _one("backup.schedule", _other(s.backup.schedule, "30 */4 * * *", "0 */6 * * *")),
    "backup.keep": lambda s: _one("backup.keep", s.backup.keep * 2),
    "backup.size": lambda s: _one("backup.size", _double(s.backup.size)),
    "backup.local": lambda s: [Scenario({"backup.local": not s.backup.local}, context=_remote(s),
                                        label="with backup.remote enabled (a copy must stay somewhere)")],
    "backup.remote.enabled": lambda s: [Scenario({"backup.remote.enabled": True},
                                                 context={**_remote(s), "backup.remote.enabled": False})],
    "backup.remote.endpoint": lambda s: _in_remote(s, "endpoint", "https://storage.example.net"),
    "backup.remote.bucket": lambda s: _in_remote(s, "bucket", "acme-openbao-backups-2"),
    "backup.remote.prefix": lambda s: _in_remote(s, "prefix", "openbao/" + s.stack),
    "backup.remote.region": lambda s: _in_remote(s, "region", "eu-central-1"),
    "backup.remote.caSecretName": lambda s: _in_remote(s, "caSecretName", "openbao-s3-ca"),
    "backup.remote.credentialsSecretName": lambda s: _in_remote(s, "credentialsSecretName", "openbao-s3-2"),
    "backup.remote.serviceAccountAnnotations": lambda s: [Scenario(
        {"backup.remote.serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": _ROLE_ARN},
         "backup.remote.credentialsSecretName": UNSET}, context=_remote(s),
        label="switch to workload identity from `credentialsSecretName`")],
    "backup.remote.keep": lambda s: _in_remote(s, "keep", s.backup.remote.keep * 2),
    "backup.remote.keepDays": lambda s: _in_remote(s, "keepDays", 30),
    "backup.remote.endpointCidrs": lambda s: _in_remote(s, "endpointCidrs", ["52.218.0.0/17", "3.5.64.0/21"]),
    "backup.remote.endpointPort": lambda s: _in_remote(s, "endpointPort", 9000),
    "backup.drill.enabled": lambda s: [Scenario({"backup.drill.enabled": not s.backup.drill.enabled},
                                                context=_drill(s, {"backup.drill.enabled": s.backup.drill.enabled}),
                                                label="with backup.remote enabled and the drill's Secret named")],
    "backup.drill.schedule": lambda s: _in_drill(s, "schedule", _other(s.backup.drill.schedule, "45 */6 * * *",
                                                                       "30 */6 * * *")),
    "backup.drill.credentialsSecretName": lambda s: _in_drill(s, "credentialsSecretName", "openbao-backup-drill-2"),
}


def apply_changes(raw: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``raw`` with dotted keys set (or removed, for ``UNSET``)."""
    out = copy.deepcopy(raw)
    for dotted, value in changes.items():
        node = out
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        if value is UNSET:
            node.pop(parts[-1], None)
        else:
            node[parts[-1]] = copy.deepcopy(value)
    return out


# --------------------------------------------------------------------------------------
# Running it
# --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One scenario of one key on one stack."""

    key: str
    stack: str
    scenario: Scenario
    changes: list[ResourceChange]

    @property
    def summary(self) -> str:
        return summarise(self.changes)

    @property
    def text(self) -> str:
        return f"{self.scenario.label}: {self.summary}" if self.scenario.label else self.summary


class Analysis:
    """Renders per stack, with the base render of each (stack, context) reused."""

    def __init__(self, root: Path = ROOT) -> None:
        self.root = root
        self._runs: dict[tuple[str, str], ProgramRun] = {}
        self.renders = 0

    def run(self, stack: str, raw: dict[str, Any]) -> ProgramRun:
        key = (stack, json.dumps(raw, sort_keys=True))
        if key not in self._runs:
            with content_addressed_fakes():
                self._runs[key] = run_program(stack, raw, self.root)
            self.renders += 1
        return self._runs[key]

    def scenarios(self, key: str, stack: str) -> list[tuple[Scenario, dict[str, Any], dict[str, Any]]]:
        """(scenario, raw before, raw after), each validated by the settings parser."""
        if key not in SAMPLES:
            raise KeyError(f"no representative change for settings key {key!r}: add one to SAMPLES")
        base = stack_config(stack, self.root)
        out = []
        for sc in SAMPLES[key](parse_settings(base, stack)):
            before, after = apply_changes(base, sc.context), apply_changes(apply_changes(base, sc.context), sc.change)
            try:
                if parse_settings(before, stack) == parse_settings(after, stack):
                    raise ValueError(f"{key} on {stack}: the sample {dict(sc.change)} does not change the settings")
            except SettingsError as err:
                raise ValueError(f"{key} on {stack}: the sample {dict(sc.change)} is not valid: {err}") from None
            out.append((sc, before, after))
        return out

    def outcomes(self, key: str, stack: str) -> list[Outcome]:
        flags = stack_provider_flags(stack, self.root)
        return [Outcome(key, stack, sc, classify(self.run(stack, before), self.run(stack, after), flags))
                for sc, before, after in self.scenarios(key, stack)]

    def table(self, stacks: Sequence[str] = STACKS, keys: Optional[Sequence[str]] = None) -> dict[str, dict[str, list[Outcome]]]:
        return {k: {s: self.outcomes(k, s) for s in stacks} for k in (keys or settings_keys())}


def key_cell(per_stack: Mapping[str, Sequence[Outcome]]) -> str:
    """One key's result: once when the stacks agree, else ``**prod**: ...<br>**dev**: ...``;
    several scenarios of one key are joined with `` · ``."""
    texts = {s: " · ".join(o.text for o in outs) for s, outs in per_stack.items()}
    if len(set(texts.values())) == 1:
        return next(iter(texts.values()))
    return "<br>".join(f"**{s}**: {t}" for s, t in texts.items())


def _change_text(scenario: Scenario) -> str:
    text = ", ".join(f"`{k}` {'unset' if v is UNSET else json.dumps(v)}" for k, v in scenario.change.items())
    if scenario.context:
        text += " (with " + ", ".join(f"`{k}` {json.dumps(v)}" for k, v in scenario.context.items()) + ")"
    return text


def markdown(table: Mapping[str, Mapping[str, Sequence[Outcome]]]) -> str:
    """The per-key table: one row per scenario, one result column per stack (the change
    column names each stack's change where they differ, e.g. a flag flipped either way)."""
    stacks = list(next(iter(table.values())).keys())
    lines = ["| key | representative change | " + " | ".join(stacks) + " |",
             "|---|---|" + "---|" * len(stacks)]
    for key, per_stack in table.items():
        for i in range(max(len(outs) for outs in per_stack.values())):
            outcomes = {s: (outs[i] if i < len(outs) else None) for s, outs in per_stack.items()}
            changes = {s: _change_text(o.scenario) if o else "—" for s, o in outcomes.items()}
            change = (next(iter(changes.values())) if len(set(changes.values())) == 1
                      else "<br>".join(f"{s}: {c}" for s, c in changes.items()))
            cells = [(o.summary if o else "—").replace("|", "/") for o in outcomes.values()]
            lines.append(f"| `{key}` | {change} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def details(outcomes: Sequence[Outcome]) -> str:
    out = []
    for o in outcomes:
        out.append(f"## {o.key} on {o.stack}: {o.text}")
        out.append(f"change {dict((k, 'unset' if v is UNSET else v) for k, v in o.scenario.change.items())}"
                   + (f", context {dict(o.scenario.context)}" if o.scenario.context else ""))
        for c in o.changes:
            if c.action == SAME and not c.options_changed:
                continue
            flags = [f for f, on in (("REFUSED", c.refused), ("delete first", c.delete_first),
                                     ("pod template", c.template_changed), ("kept in cluster", c.retained)) if on]
            line = f"  {c.action:8} {c.label}" + (f" [{', '.join(flags)}]" if flags else "")
            if c.replace_paths:
                line += f" replaces on: {', '.join(c.replace_paths[:6])}"
            elif c.paths:
                line += f" changes: {', '.join(c.paths[:6])}" + (" ..." if len(c.paths) > 6 else "")
            if c.options_changed:
                line += f" options: {', '.join(c.options_changed)}"
            out.append(line + "".join(f" ({n})" for n in c.notes))
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# The README column
# --------------------------------------------------------------------------------------


def _table_bounds(lines: list[str]) -> tuple[int, int]:
    """First and last line index of the table in README's "Stack configuration" section."""
    start = next(i for i, l in enumerate(lines) if l.strip() == "## Stack configuration")
    first = next(i for i in range(start, len(lines)) if lines[i].startswith("|"))
    last = first
    while last + 1 < len(lines) and lines[last + 1].startswith("|"):
        last += 1
    return first, last


def _cells(line: str) -> list[str]:
    return [c.strip() for c in line.strip().strip("|").split("|")]


def row_keys(first_cell: str) -> list[str]:
    """`storage.dataSize` / `storage.auditSize` -> both; `a.b` / `c` -> a.b, a.c (c shares a's section)."""
    names = re.findall(r"`([^`]+)`", first_cell)
    keys = []
    for n in names:
        if "." not in n and keys and "." in keys[0]:
            n = keys[0].rsplit(".", 1)[0] + "." + n
        keys.append(n)
    return keys


def readme_rows(text: str) -> list[tuple[list[str], list[str]]]:
    """(keys, cells) of every row of the config table."""
    lines = text.splitlines()
    first, last = _table_bounds(lines)
    return [(row_keys(_cells(l)[0]), _cells(l)) for l in lines[first + 2:last + 1]]


def row_cell(keys: Sequence[str], table: Mapping[str, Mapping[str, Sequence[Outcome]]]) -> str:
    cells = [key_cell(table[k]) for k in keys]
    if len(set(cells)) == 1:
        return cells[0]
    return "<br>".join(f"`{k.split('.')[-1] if i else k}`: {c}" for i, (k, c) in enumerate(zip(keys, cells)))


def render_readme(text: str, table: Mapping[str, Mapping[str, Sequence[Outcome]]]) -> str:
    """README text with the config table's result column (re)written from ``table``."""
    lines = text.splitlines()
    first, last = _table_bounds(lines)
    header = _cells(lines[first])
    has = header[-1] == COLUMN
    base = header[:-1] if has else header
    lines[first] = "| " + " | ".join(base + [COLUMN]) + " |"
    lines[first + 1] = "|" + "---|" * (len(base) + 1)
    for i in range(first + 2, last + 1):
        cells = _cells(lines[i])
        cells = cells[:-1] if has else cells
        keys = row_keys(cells[0])
        missing = [k for k in keys if k not in table]
        if missing:
            raise KeyError(f"README documents {missing}, which the settings parser does not accept")
        lines[i] = "| " + " | ".join(cells + [row_cell(keys, table)]) + " |"
    return "\n".join(lines) + ("\n" if text.endswith("\n") else "")


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", action="append", help="stack(s) to analyse (default: prod and dev)")
    parser.add_argument("--key", action="append", help="only these settings keys")
    parser.add_argument("--details", metavar="KEY", help="per-resource actions for one key")
    parser.add_argument("--write-readme", action="store_true", help="rewrite the README config table's result column")
    args = parser.parse_args(argv)
    stacks = args.stack or list(STACKS)
    analysis = Analysis()
    if args.details:
        print("\n".join(details(analysis.outcomes(args.details, s)) for s in stacks))
        return 0
    if args.write_readme:
        table = analysis.table(STACKS)
        README.write_text(render_readme(README.read_text(), table))
        print(f"README.md: column {COLUMN!r} rewritten ({analysis.renders} renders)", file=sys.stderr)
        return 0
    print(markdown(analysis.table(stacks, args.key)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
