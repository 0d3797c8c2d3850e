"""The pack as the engine sees it: metadata, enforcement levels, config, secrets and unknowns."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from google.protobuf import json_format
from pulumi.runtime.proto import analyzer_pb2

from tests.policy.conftest import HA_RULES, PRODUCTION
from tests.policy.policy_harness import PACK_DIR, PolicyAnalyzer, secret
from tests.policy.policy_stack import baseline, resources

STACK_RULES = {"openbao-gateway-backend-tls", "openbao-service-exposure", "rbac-no-workload-secret-read", "network-default-deny",
               "network-openbao-ports", "ha-quorum-pdb"}
#: The preview sentinel the engine sends for a string it cannot know yet.
UNKNOWN_STRING = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


def test_pack_metadata(analyzer: PolicyAnalyzer) -> None:
    """Every rule: mandatory by default, a severity, a description, a documented config."""
    info = analyzer.info
    assert info.name == "openbao-platform" and info.supportsConfig
    assert len(info.policies) >= 30
    for p in info.policies:
        assert p.enforcementLevel == analyzer_pb2.MANDATORY, p.name
        assert p.severity != analyzer_pb2.POLICY_SEVERITY_UNSPECIFIED, p.name
        assert len(p.description) > 30, p.name
        for prop, schema in json_format.MessageToDict(p.configSchema.properties).items():
            assert "default" in schema and schema.get("description"), (p.name, prop)
    stack = {p.name for p in info.policies if p.policy_type == analyzer_pb2.POLICY_TYPE_STACK}
    assert stack == STACK_RULES


def test_pack_starts_the_way_the_engine_runs_it(tmp_path: Path) -> None:
    """`pulumi preview --policy-pack policies` runs the directory through pulumi.policy
    (runpy), from the project's directory or any other: the pack must load as it is."""
    engine_like = PolicyAnalyzer(like_engine=True, cwd=tmp_path)
    try:
        assert engine_like.info.name == "openbao-platform"
        engine_like.configure(PRODUCTION)
        assert engine_like.analyze_all(resources(baseline())) == []
    finally:
        engine_like.close()


def _break_listener_and_network(stack: dict[str, Any]) -> None:
    config = json.loads(stack["config"]["props"]["data"]["server.json"])
    config["listener"][0]["tcp"]["tls_disable"] = True
    stack["config"]["props"]["data"]["server.json"] = json.dumps(config)
    del stack["np_deny"]


@pytest.mark.parametrize("level", ["advisory", "disabled", "mandatory"])
def test_configured_enforcement_level_is_honoured(analyzer: PolicyAnalyzer, level: str) -> None:
    """Configure sets a resource rule and a stack rule to ``level``; the diagnostics follow."""
    analyzer.configure({**PRODUCTION, "openbao-listener-tls": {"enforcementLevel": level},
                        "network-default-deny": {"enforcementLevel": level}})
    stack = baseline()
    _break_listener_and_network(stack)
    diagnostics = analyzer.analyze_all(resources(stack))
    for rule in ("openbao-listener-tls", "network-default-deny"):
        levels = {d.level for d in diagnostics if d.policy == rule}
        assert levels == (set() if level == "disabled" else {level}), rule
    assert {d.policy for d in diagnostics} <= {"openbao-listener-tls", "network-default-deny"}


def test_secret_values_are_unwrapped_and_never_echoed(policy: PolicyAnalyzer) -> None:
    """Secret-wrapped props are checked like plain ones, and no message repeats the value."""
    token = "hvs." + "Zq8Rt2Lm5Xw9Kp3Vn7Bc4Hd6Fg1Js0Ay" * 3
    key = "q3Vw5Zk1R0f8mD2Yx7LhT9bNcJ4sPa6WeUo+GiKr1Hs="
    stack = baseline()
    config = json.loads(stack["config"]["props"]["data"]["server.json"])
    config["seal"]["static"]["current_key"] = key
    stack["config"]["props"]["data"] = secret({**stack["config"]["props"]["data"], "server.json": json.dumps(config),
                                               "client.env": f"BAO_TOKEN={token}"})
    diagnostics = policy.analyze_all(resources(stack))
    assert {d.policy for d in diagnostics} == {"unseal-key-protected", "configmap-no-credentials"}
    assert any("data[client.env] contains an OpenBao/Vault token" in d.message for d in diagnostics)
    for d in diagnostics:
        assert token not in d.message and key not in d.message and key[:12] not in d.message


def test_unknown_preview_values_give_advisory_not_mandatory(policy: PolicyAnalyzer) -> None:
    """A config that is unknown during preview cannot be checked: say so, do not block."""
    stack = baseline()
    stack["config"]["props"]["data"]["server.json"] = UNKNOWN_STRING
    diagnostics = policy.analyze_all(resources(stack))
    listener = [d for d in diagnostics if d.policy == "openbao-listener-tls"]
    assert listener and all(d.level == "advisory" and "during preview" in d.message for d in listener)
    assert [d for d in diagnostics if d.level == "mandatory"] == []


def test_unknown_value_elsewhere_does_not_stop_a_rule(policy: PolicyAnalyzer) -> None:
    """Rules read only the fields they judge: an unknown env value (an Output not resolved
    in preview) leaves every rule running, and the probe violation still blocks."""
    stack = baseline()
    server = stack["statefulset"]["props"]["spec"]["template"]["spec"]["containers"][0]
    server["env"].append({"name": "BAO_SELF_INIT_PEERS", "value": UNKNOWN_STRING})
    server["readinessProbe"]["httpGet"]["scheme"] = "HTTP"
    diagnostics = policy.analyze_all(resources(stack))
    assert [(d.policy, d.level) for d in diagnostics] == [("openbao-probes-https", "mandatory")]


def test_ha_rules_do_not_apply_outside_production(analyzer: PolicyAnalyzer) -> None:
    """Without `production: true` a single-node dev cluster passes, and the engine is told why."""
    analyzer.configure()  # defaults: production false
    stack = baseline()
    stack["statefulset"]["props"]["spec"]["replicas"] = 1
    stack["statefulset"]["props"]["spec"]["updateStrategy"] = {"type": "RollingUpdate"}
    del stack["pdb"]
    assert analyzer.analyze_all(resources(stack)) == []
    not_applicable = {n.policy_name for n in analyzer.analyze_raw(stack["statefulset"]).not_applicable}
    not_applicable |= {n.policy_name for n in analyzer.analyze_stack_raw(resources(stack)).not_applicable}
    assert set(HA_RULES) <= not_applicable
    analyzer.configure(PRODUCTION)
    fired = {d.policy for d in analyzer.analyze_all(resources(stack))}
    assert {"ha-raft-replicas", "ha-quorum-pdb", "ha-ondelete-updates"} <= fired


@pytest.mark.parametrize("stack_name", ["prod", "dev"])
def test_policy_config_file_matches_schema(analyzer: PolicyAnalyzer, stack_name: str) -> None:
    """policy-config.<stack>.json names only real rules and valid properties (what
    `pulumi policy validate-config` checks), and only prod turns the HA rules on."""
    raw = json.loads((PACK_DIR / f"policy-config.{stack_name}.json").read_text())
    policies = {p.name: p for p in analyzer.info.policies}
    for name, value in raw.items():
        assert name == "all" or name in policies, name
        if not isinstance(value, dict):
            assert value in ("advisory", "mandatory", "disabled", "remediate"), name
            continue
        props = {k: v for k, v in value.items() if k != "enforcementLevel"}
        schema = json_format.MessageToDict(policies[name].configSchema.properties)
        assert set(props) <= set(schema), name
        jsonschema.validate(props, {"type": "object", "properties": schema, "additionalProperties": False})
    for rule in HA_RULES:
        assert raw.get(rule, {}).get("production", False) is (stack_name == "prod"), rule


@pytest.mark.parametrize("stack_name, fires", [("prod", True), ("dev", False)])
def test_policy_config_file_is_applied(analyzer: PolicyAnalyzer, stack_name: str, fires: bool) -> None:
    """Read the config file as the CLI does: an even replica count blocks prod, not dev."""
    analyzer.configure_from_file(PACK_DIR / f"policy-config.{stack_name}.json")
    assert analyzer.analyze_all(resources(baseline())) == []
    stack = baseline()
    stack["statefulset"]["props"]["spec"]["replicas"] = 2
    diagnostics = analyzer.analyze_all(resources(stack))
    assert any(d.policy == "ha-raft-replicas" and d.level == "mandatory" for d in diagnostics) is fires
