"""The real program's stacks pass the pack, and the pack really looks at them.

``python -m tools.render --stack <s> --out DIR`` writes DIR/resources.json as the engine
would see the registrations; every resource goes through Analyze and the whole list through
AnalyzeStack with the stack's own policy config file. Zero mandatory violations is what
`pulumi preview --policy-pack policies` needs; the second test breaks the rendered objects
to prove the rules recognised them (a clean result from rules that matched nothing would
prove nothing).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from tests.policy.policy_harness import PACK_DIR, PolicyAnalyzer, render_stack

STACKS = ["prod", "dev"]


@pytest.fixture(scope="module", params=STACKS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, list[dict[str, Any]]]:
    stack = request.param
    return stack, render_stack(stack, tmp_path_factory.mktemp(f"render-{stack}"))


def _configure(analyzer: PolicyAnalyzer, stack: str) -> None:
    analyzer.configure_from_file(PACK_DIR / f"policy-config.{stack}.json")


def test_rendered_stack_has_no_mandatory_violations(analyzer: PolicyAnalyzer, rendered: tuple[str, list[dict[str, Any]]]) -> None:
    stack, resources = rendered
    _configure(analyzer, stack)
    diagnostics = analyzer.analyze_all(resources, stack)
    mandatory = [f"{d.policy} @ {d.urn.rsplit('::', 1)[-1]}: {d.message.splitlines()[-1]}"
                 for d in diagnostics if d.level == "mandatory"]
    assert mandatory == [], "\n".join(mandatory)


def _find(resources: list[dict[str, Any]], predicate: Any) -> dict[str, Any]:
    found = [r for r in resources if predicate(r)]
    assert found, "expected resource not rendered"
    return found[0]


def test_rules_recognise_the_rendered_objects(analyzer: PolicyAnalyzer, rendered: tuple[str, list[dict[str, Any]]]) -> None:
    stack, original = rendered
    _configure(analyzer, stack)
    resources = copy.deepcopy(original)
    config = _find(resources, lambda r: r["type"] == "kubernetes:core/v1:ConfigMap"
                   and "server.json" in r["props"].get("data", {}))
    server = json.loads(config["props"]["data"]["server.json"])
    server["listener"][0]["tcp"]["tls_disable"] = True
    config["props"]["data"]["server.json"] = json.dumps(server)
    sts = _find(resources, lambda r: r["type"] == "kubernetes:apps/v1:StatefulSet")
    sts["props"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]["privileged"] = True
    sts["props"]["spec"]["replicas"] = 4
    role = _find(resources, lambda r: r["type"] == "kubernetes:rbac.authorization.k8s.io/v1:Role")
    role["props"]["rules"][-1]["verbs"] = ["*"]
    fired = {d.policy for d in analyzer.analyze_all(resources, stack) if d.level == "mandatory"}
    expected = {"openbao-listener-tls", "pod-security-restricted", "rbac-no-wildcards"}
    if stack == "prod":
        expected.add("ha-raft-replicas")
    assert expected <= fired, f"missing: {expected - fired}"
