"""The pack in the first preview of a new stack, driven over gRPC as the engine drives it.

The resources come from ``run_program(..., preview=True)`` and reach the pack encoded as the
engine encodes them (``policy_harness.preview_resources``): an unknown value is the string
sentinel ``04da6b54-80e4-46f7-96ec-b56ff0331ba9``, secrets keep their wrapper, ``Analyze``
gets the inputs and ``AnalyzeStack`` the outputs. pulumi-policy turns any rule that touches
an unknown into an advisory "can't run policy ... during preview" (proxy.py / policy.py,
pulumi/pulumi-policy 805bcbc), which would quietly weaken a mandatory rule. So the preview
must give no mandatory violation, no downgrade on any object a rule really judges, and the
downgrades that remain must be exactly the honest ones listed here.

Also here: the HA rules follow the stack's own production label, whatever the config says.
"""

from __future__ import annotations

import base64
import copy
import json
from typing import Any

import pytest

from openbao_platform.cluster_manifests import PRODUCTION_LABEL
from tests.policy.conftest import HA_RULES
from tests.policy.policy_harness import (
    PACK_DIR, UNKNOWN, Diagnostic, PolicyAnalyzer, cannot_run_in_preview, preview_resources, secret,
)
from tests.policy.policy_stack import baseline, resources
from tests.support.preview import INSPECTED_KINDS, VARIANTS, preview_run

#: Rules that read server config out of every ConfigMap and Secret value (openbao_configs).
CONFIG_RULES = ("openbao-listener-tls", "openbao-raft-join-tls", "unseal-key-protected", "openbao-server-hardening")
#: What honestly cannot be checked in a first preview: each rule needs the value itself (is
#: there an OpenBao config, an inline unseal key, a private key in it?) and the value is
#: unknown until pulumi-tls / pulumi-random have run; ``pulumi up`` runs them on real values.
_SECRETS = {(f"Secret {name}", rule) for name in ("openbao-tls", "openbao-ca", "openbao-unseal", "openbao-init")
            for rule in CONFIG_RULES}
_GATEWAY_CA = {("ConfigMap openbao-ca", rule) for rule in (*CONFIG_RULES, "configmap-no-credentials")}
EXPECTED_CANNOT_RUN = {
    "prod": _SECRETS,
    "dev": _SECRETS,
    "prod-gateway": _SECRETS | _GATEWAY_CA,
    "dev-gateway": _SECRETS | _GATEWAY_CA,
}


def _kind_and_name(resource: dict[str, Any]) -> str:
    props = resource["props"]
    meta = props.get("metadata") if isinstance(props.get("metadata"), dict) else {}
    return f"{props.get('kind')} {meta.get('name')}"


def _analyze_preview(analyzer: PolicyAnalyzer, stack: str, res: list[dict[str, Any]]
                     ) -> tuple[list[tuple[dict[str, Any], Diagnostic]], list[Diagnostic]]:
    """What the engine does in a preview: (each resource's diagnostics, with the resource;
    the stack rules' diagnostics)."""
    return [(r, d) for r in res for d in analyzer.analyze(r, stack)], analyzer.analyze_stack(res, stack)


@pytest.fixture(scope="module", params=list(VARIANTS))
def preview(request: pytest.FixtureRequest) -> tuple[str, str, list[dict[str, Any]]]:
    """(variant, stack, resources of its first preview as the engine sends them)."""
    run = preview_run(request.param)
    return request.param, run.stack, preview_resources(run.registrations)


def test_first_preview_is_fully_checked(analyzer: PolicyAnalyzer, preview: tuple[str, str, list[dict[str, Any]]]) -> None:
    """The stack's own policy config: no mandatory violation, no rule downgraded on an object a
    rule judges (nor any stack rule at all), and exactly the honest downgrades remain."""
    variant, stack, res = preview
    cert = next(r for r in res if r["type"] == "tls:index/locallySignedCert:LocallySignedCert")
    assert cert["outputs"]["certPem"] == UNKNOWN and "certPem" not in cert["props"], "AnalyzeStack sees outputs"
    analyzer.configure_from_file(PACK_DIR / f"policy-config.{stack}.json")
    per_resource, stack_diags = _analyze_preview(analyzer, stack, res)
    everything = [d for _, d in per_resource] + stack_diags
    mandatory = [f"{d.policy}: {d.message.splitlines()[-1]}" for d in everything if d.level == "mandatory"]
    assert mandatory == [], "\n".join(mandatory)
    assert [d for d in stack_diags if cannot_run_in_preview(d)] == [], "a stack rule could not run in preview"
    downgraded = {(_kind_and_name(r), d.policy) for r, d in per_resource if cannot_run_in_preview(d)}
    on_inspected = {pair for pair in downgraded if pair[0].split()[0] in INSPECTED_KINDS}
    assert on_inspected == set(), f"rules downgraded on objects they judge: {sorted(on_inspected)}"
    assert downgraded == EXPECTED_CANNOT_RUN[variant]
    assert {d.level for d in everything} <= {"advisory"} and all(cannot_run_in_preview(d) for d in everything)


def test_first_preview_rules_still_judge_the_objects(analyzer: PolicyAnalyzer,
                                                     preview: tuple[str, str, list[dict[str, Any]]]) -> None:
    """The clean result is not a pass by default: break the preview objects and the rules on
    them (resource and stack rules) block, while the Secrets' data is still unknown."""
    _, stack, original = preview
    analyzer.configure_from_file(PACK_DIR / f"policy-config.{stack}.json")
    res = copy.deepcopy(original)
    by_kind = {}
    for r in res:
        by_kind.setdefault(r["props"].get("kind"), []).append(r)
    sts = by_kind["StatefulSet"][0]
    for view in ("props", "outputs"):
        sts[view]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    by_kind["Role"][0]["props"]["rules"][0]["verbs"] = ["*"]
    job = by_kind["CronJob"][0]["props"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    job["containers"][0]["image"] = "quay.io/openbao/openbao:latest"
    deny = next(r for r in by_kind["NetworkPolicy"] if r["props"]["spec"].get("podSelector") == {})
    res.remove(deny)
    per_resource, stack_diags = _analyze_preview(analyzer, stack, res)
    fired = {d.policy for _, d in per_resource if d.level == "mandatory"} | \
            {d.policy for d in stack_diags if d.level == "mandatory"}
    assert {"pod-security-restricted", "rbac-no-wildcards", "pod-image-pinned", "network-default-deny"} <= fired


# --------------------------------------------------------------------------------------
# Rules step over unknown values they do not need and check the rest
# --------------------------------------------------------------------------------------


def _levels(diagnostics: list[Diagnostic], rule: str) -> list[str]:
    return sorted(("cannot-run" if cannot_run_in_preview(d) else d.level) for d in diagnostics if d.policy == rule)


def test_unknown_configmap_item_does_not_silence_the_config_rules(policy: PolicyAnalyzer) -> None:
    """A ConfigMap with a known (bad) server.json and one unknown item: the listener rule
    still blocks on server.json, and says honestly that it could not read the other item."""
    stack = baseline()
    server = json.loads(stack["config"]["props"]["data"]["server.json"])
    server["listener"][0]["tcp"]["tls_disable"] = True
    stack["config"]["props"]["data"] = {"ca.crt": UNKNOWN, "server.json": json.dumps(server),
                                        **{k: v for k, v in stack["config"]["props"]["data"].items()
                                           if k != "server.json"}}
    diagnostics = policy.analyze(stack["config"])
    assert _levels(diagnostics, "openbao-listener-tls") == ["cannot-run", "mandatory"]
    assert any("data[server.json]" in d.message and "tls_disable" in d.message for d in diagnostics
               if d.level == "mandatory")
    assert any(".data.ca.crt can't be known during preview" in d.message for d in diagnostics)


def test_unknown_secret_data_does_not_silence_the_rule_on_known_data(policy: PolicyAnalyzer) -> None:
    """A Secret whose ``stringData`` is unknown (read first) but whose ``data`` holds a config
    with an inline seal key: unseal-key-protected still blocks; the unknown part is reported,
    not passed."""
    stack = baseline()
    config = json.loads(stack["config"]["props"]["data"]["server.json"])
    config["seal"]["static"]["current_key"] = "q3Vw5Zk1R0f8mD2Yx7LhT9bNcJ4sPa6WeUo+GiKr1Hs="
    stack["unseal_secret"]["props"]["stringData"] = secret(UNKNOWN)
    stack["unseal_secret"]["props"]["data"] = secret(
        {"server.json": base64.b64encode(json.dumps(config).encode()).decode()})
    diagnostics = policy.analyze(stack["unseal_secret"])
    assert _levels(diagnostics, "unseal-key-protected") == ["cannot-run", "mandatory"]
    assert any("data[server.json] seal[0].static.current_key" in d.message for d in diagnostics)
    assert any(".stringData can't be known during preview" in d.message for d in diagnostics)


def test_item_names_are_judged_even_when_values_are_unknown(policy: PolicyAnalyzer) -> None:
    """The unseal-key name check needs item names only: an unknown value cannot hide a
    ConfigMap item named like an unseal key."""
    stack = baseline()
    stack["ca_configmap"]["props"]["data"] = {"unseal-v1": UNKNOWN}
    diagnostics = policy.analyze(stack["ca_configmap"])
    assert any(d.level == "mandatory" and "data[unseal-v1] looks like an unseal key" in d.message
               for d in diagnostics if d.policy == "unseal-key-protected")


# --------------------------------------------------------------------------------------
# HA rules: the stack marks itself production
# --------------------------------------------------------------------------------------


def _not_applicable(analyzer: PolicyAnalyzer, res: list[dict[str, Any]], sts: dict[str, Any]) -> set[str]:
    names = {n.policy_name for n in analyzer.analyze_raw(sts).not_applicable}
    return names | {n.policy_name for n in analyzer.analyze_stack_raw(res).not_applicable}


def _statefulset(res: list[dict[str, Any]]) -> dict[str, Any]:
    return next(r for r in res if r["type"] == "kubernetes:apps/v1:StatefulSet")


def test_prod_render_carries_the_production_label(prod_run: Any, dev_run: Any) -> None:
    """The label that switches the HA rules on is on prod's StatefulSet, and only there."""
    assert prod_run.object("StatefulSet", "openbao")["metadata"]["labels"].get(PRODUCTION_LABEL) == "true"
    assert PRODUCTION_LABEL not in dev_run.object("StatefulSet", "openbao")["metadata"]["labels"]
    pod_labels = prod_run.object("StatefulSet", "openbao")["spec"]["template"]["metadata"]["labels"]
    assert PRODUCTION_LABEL not in pod_labels, "the label belongs on the object, not on the pods"


@pytest.mark.parametrize("config_file", ["policy-config.prod.json", "policy-config.dev.json"])
def test_production_label_turns_the_ha_rules_on_whatever_the_config(analyzer: PolicyAnalyzer,
                                                                    config_file: str) -> None:
    """prod's preview under prod's config and under dev's (production: false): the HA rules run
    either way, and an even replica count or a missing PDB blocks."""
    analyzer.configure_from_file(PACK_DIR / config_file)
    res = preview_resources(preview_run("prod").registrations)
    assert not set(HA_RULES) & _not_applicable(analyzer, res, _statefulset(res))
    broken = copy.deepcopy(res)
    sts = _statefulset(broken)
    for view in ("props", "outputs"):
        sts[view]["spec"]["replicas"] = 4
        sts[view]["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    broken = [r for r in broken if r["props"].get("kind") != "PodDisruptionBudget"]
    fired = {d.policy for d in analyzer.analyze_all(broken, "prod") if d.level == "mandatory"}
    assert {"ha-raft-replicas", "ha-ondelete-updates", "ha-quorum-pdb"} <= fired


def test_dev_stays_out_of_the_ha_rules_without_the_label(analyzer: PolicyAnalyzer) -> None:
    """dev's preview (no label) under dev's config: the HA rules tell the engine they do not
    apply; give its StatefulSet the label and the same config can no longer keep them off."""
    analyzer.configure_from_file(PACK_DIR / "policy-config.dev.json")
    res = preview_resources(preview_run("dev").registrations)
    assert set(HA_RULES) <= _not_applicable(analyzer, res, _statefulset(res))
    labelled = copy.deepcopy(res)
    sts = _statefulset(labelled)
    for view in ("props", "outputs"):
        sts[view]["metadata"]["labels"][PRODUCTION_LABEL] = "true"
    assert not set(HA_RULES) & _not_applicable(analyzer, labelled, sts)


def test_label_value_must_be_exactly_true(analyzer: PolicyAnalyzer) -> None:
    """Only "true" marks production; the pack's own baseline (no label) follows the config."""
    analyzer.configure()  # production: false everywhere
    stack = baseline()
    stack["statefulset"]["props"]["spec"]["replicas"] = 2
    del stack["pdb"]
    assert analyzer.analyze_all(resources(stack)) == []
    stack["statefulset"]["props"]["metadata"]["labels"][PRODUCTION_LABEL] = "false"
    assert analyzer.analyze_all(resources(stack)) == []
    stack["statefulset"]["props"]["metadata"]["labels"][PRODUCTION_LABEL] = "true"
    fired = {d.policy for d in analyzer.analyze_all(resources(stack)) if d.level == "mandatory"}
    assert fired == {"ha-raft-replicas", "ha-quorum-pdb"}


def test_stack_rule_judges_only_production_statefulsets(analyzer: PolicyAnalyzer) -> None:
    """With production: false, ha-quorum-pdb judges the labelled StatefulSet and leaves an
    unlabelled one (another namespace, no PDB) alone."""
    analyzer.configure()
    stack = baseline()
    other = copy.deepcopy(stack["statefulset"])
    other["name"] = "other-openbao"
    other["props"]["metadata"]["namespace"] = "other"
    stack["other"] = other
    stack["statefulset"]["props"]["metadata"]["labels"][PRODUCTION_LABEL] = "true"

    def ha(res: list[dict[str, Any]]) -> list[tuple[str, str]]:
        return [(d.policy, d.message.splitlines()[-1].split(":")[0]) for d in analyzer.analyze_stack(res)
                if d.policy in HA_RULES]

    assert ha(resources(stack)) == []  # "other" has no PDB, and is not judged
    del stack["pdb"]
    assert ha(resources(stack)) == [("ha-quorum-pdb", "StatefulSet openbao/openbao")]
