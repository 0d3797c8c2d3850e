"""Offline schema validation of Kubernetes objects: built-in kinds and our CRD kinds.

Built-in kinds go through ``kubernetes-validate`` in strict mode (unknown fields are
errors, as with ``kubectl apply --validate=strict``) against the pinned Kubernetes
version. CRD kinds go through the openAPIV3Schema transcribed under ``crds/`` (see the
README there), made strict the same way, with ``metadata`` checked against the pinned
version's ObjectMeta. No network is used.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils as kv_utils
from referencing import Registry, Resource

#: The Kubernetes version every object must validate against (oldest minor still
#: maintained upstream in Nov 2026; kubernetes-validate 1.37 ships 1.25-1.37).
KUBERNETES_VERSION = "1.35"
CRD_DIR = Path(__file__).parent / "crds"
_DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
_OBJECT_META = {"$ref": f"{_DEFINITIONS_ID}#/$defs/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}


def _strict(schema: dict[str, Any]) -> dict[str, Any]:
    """openAPIV3Schema -> JSON Schema that rejects unknown fields (structural pruning)."""
    out = dict(schema)
    if "properties" in out:
        out["properties"] = {name: _strict(sub) for name, sub in out["properties"].items()}
        if "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
            out["additionalProperties"] = False
    for key in ("items", "additionalProperties"):
        if isinstance(out.get(key), dict):
            out[key] = _strict(out[key])
    for key in ("anyOf", "allOf", "oneOf"):
        if key in out:
            out[key] = [_strict(sub) for sub in out[key]]
    if out.pop("nullable", False) and "type" in out:
        out["type"] = [out["type"], "null"]
    if "pattern" in out:
        # Go's RE2 accepts `^(?i)...`; Python wants global flags first: `(?i)^...`.
        out["pattern"] = re.sub(r"^\^\(\?([a-z]+)\)", r"(?\1)^", out["pattern"])
    return out


@lru_cache(maxsize=1)
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> strict JSON Schema for every vendored CRD version."""
    schemas = {}
    for path in sorted(CRD_DIR.glob("*.json")):
        doc = json.loads(path.read_text())
        schema = _strict(doc["openAPIV3Schema"])
        schema["properties"]["metadata"] = _OBJECT_META
        schemas[(f"{doc['group']}/{doc['version']}", doc["kind"])] = schema
    return schemas


@lru_cache(maxsize=1)
def _registry() -> Registry:
    definitions = kv_utils.schema_contents(
        f"kubernetes-json-schema/v{KUBERNETES_VERSION}.0-local-strict/_definitions.json", KUBERNETES_VERSION)
    return Resource.from_contents(definitions) @ Registry()


def _crd_errors(obj: Mapping[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema, registry=_registry())
    return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in validator.iter_errors(obj)]


def validation_errors(obj: Mapping[str, Any]) -> list[str]:
    """Every schema problem of one object, each prefixed with kind/name; [] when valid."""
    who = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    crd = crd_schemas().get((str(obj.get("apiVersion")), str(obj.get("kind"))))
    if crd is not None:
        return [f"{who}: {e}" for e in _crd_errors(obj, crd)]
    try:
        kubernetes_validate.validate(dict(obj), KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as e:
        return [f"{who}: {'/'.join(map(str, e.path)) or '<root>'}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{who}: {e.message}; vendor its CRD schema under {CRD_DIR}"]
    return []
