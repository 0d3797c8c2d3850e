"""Every object we deploy validates against the Kubernetes (or CRD) schema it targets."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

import jsonschema
import pytest

from tests.schema.kube_schema import CRD_DIR, KUBERNETES_VERSION, crd_schemas, validation_errors
from tests.schema.rendering import RENDER_VARIANTS, load_manifests
from tests.schema.samples import SAMPLE_STACKS, builder_objects, sample_settings


def _all_errors(objects: list[dict[str, Any]]) -> list[str]:
    return [err for obj in objects for err in validation_errors(obj)]


@pytest.mark.parametrize("stack", sorted(SAMPLE_STACKS))
def test_builder_objects_validate(stack: str) -> None:
    objects = builder_objects(sample_settings(stack))
    assert objects, "the builders produced nothing to validate"
    assert _all_errors(objects) == []


@pytest.mark.parametrize("variant", sorted(RENDER_VARIANTS))
def test_rendered_stack_validates(variant: str, rendered_manifests: Callable[[str], Path]) -> None:
    objects = load_manifests(rendered_manifests(variant))
    assert _all_errors(objects) == [], f"Kubernetes {KUBERNETES_VERSION} schema errors in {variant}"


def test_vendored_crd_schemas_are_valid_json_schema() -> None:
    files = sorted(CRD_DIR.glob("*.json"))
    kinds = {json.loads(f.read_text())["kind"] for f in files}
    assert kinds == {"HTTPRoute", "BackendTLSPolicy", "ServiceMonitor", "PrometheusRule"}
    for schema in crd_schemas().values():
        jsonschema.Draft202012Validator.check_schema(schema)


# The validator must be able to fail: one broken variant of each kind we build.

def _gateway_objects() -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in builder_objects(sample_settings("prod-gateway"))}


def _break(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    broken = copy.deepcopy(obj)
    node = broken
    *parents, leaf = path.split(".")
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[leaf] = value
    return broken


@pytest.mark.parametrize("kind, path, value, expected", [
    ("HTTPRoute", "spec.hostnames", ["Not_A_Host"], "does not match"),
    ("HTTPRoute", "spec.rules.0.backendRefs.0.port", 70000, "is greater than the maximum"),
    ("HTTPRoute", "spec.parentRef", [], "Additional properties"),
    ("BackendTLSPolicy", "spec.validation.hostName", "x", "Additional properties"),
    ("BackendTLSPolicy", "spec.targetRefs", [], "should be non-empty"),
    ("HTTPRoute", "metadata.labelz", {}, "Additional properties"),
])
def test_crd_validation_rejects_broken_objects(kind: str, path: str, value: Any, expected: str) -> None:
    errors = validation_errors(_break(_gateway_objects()[kind], path, value))
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize("path, value, expected", [
    ("spec.podSelectors", {}, "Additional properties"),
    ("spec.ingress.0.ports.0.port", [8200], "is not valid"),
])
def test_builtin_validation_rejects_broken_objects(path: str, value: Any, expected: str) -> None:
    policy = builder_objects(sample_settings("prod-nginx"))[1]
    assert policy["kind"] == "NetworkPolicy"
    errors = validation_errors(_break(policy, path, value))
    assert any(expected in e for e in errors), errors


def test_unknown_kind_is_an_error_not_a_pass() -> None:
    obj = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    assert "vendor its CRD schema" in " ".join(validation_errors(obj))
