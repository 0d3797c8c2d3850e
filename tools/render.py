"""Offline render: run the program for a stack and write what it would deploy.

    python -m tools.render --stack prod --out DIR [--set ingress.mode=gateway] [--include-secrets]

Writes
  DIR/manifests/      every Kubernetes object as YAML, one file per object
  DIR/resources.json  every registered resource as the engine sees it: {"type", "name", "urn",
                      "options" (protect, retainOnDelete, customTimeouts, aliases, ... when set), "props"}
  DIR/openbao/        the OpenBao config as the pods read it (config/), the certificates and
                      key files it names (tls/, unseal/, init/), and pods.json (per-pod env)

The render uses the same harness as the tests (real Pulumi SDK under mocks, a crypto-backed
fake for pulumi-tls/random), so certificates and keys are freshly generated test material,
never a real stack's. Secret values are redacted in manifests/ and resources.json unless
--include-secrets; openbao/ always holds usable files (mode 0600) for the e2e suite.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import sys
from pathlib import Path
from typing import Any, Optional

import yaml

from openbao_platform.server_config import pod_environment
from openbao_platform.settings import SettingsError, parse_settings
from tests.support.cluster import spec_of
from tests.support.fakes import unwrap
from tests.support.program import ProgramRun, Registration, apply_override, run_program, stack_config
from pulumi.runtime import rpc

REDACTED = "<redacted>"
REDACTED_B64 = base64.b64encode(REDACTED.encode()).decode()


def _is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(rpc._special_sig_key) == rpc._special_secret_sig


def _normalise(value: Any) -> Any:
    """Protobuf Struct numbers are doubles: give integral ones back their int type."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_normalise(v) for v in value]
    return value


def redact(value: Any, include_secrets: bool) -> Any:
    """Replace every value the program marked secret with a marker, keeping dict keys visible."""
    if _is_secret(value):
        inner = value["value"]
        if include_secrets:
            return redact(inner, True)
        if isinstance(inner, dict):
            return {k: REDACTED for k in unwrap(inner)}
        return REDACTED
    if isinstance(value, dict):
        return {k: redact(v, include_secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, include_secrets) for v in value]
    return value


def manifest(reg: Registration, include_secrets: bool) -> dict[str, Any]:
    """The Kubernetes object; Secret payloads redacted field by field unless asked not to."""
    obj = _normalise(redact(reg.props, include_secrets))
    if obj.get("kind") == "Secret" and not include_secrets:
        if "data" in obj:
            obj["data"] = {k: REDACTED_B64 for k in obj["data"]}
        if "stringData" in obj:
            obj["stringData"] = {k: REDACTED for k in obj["stringData"]}
    return obj


#: Files are numbered in apply order (what a reviewer reads top to bottom), then by name,
#: so the same program always renders the same file names.
_KIND_ORDER = ["Namespace", "ServiceAccount", "Secret", "ConfigMap", "Role", "ClusterRole", "RoleBinding",
               "ClusterRoleBinding", "NetworkPolicy", "PersistentVolumeClaim", "Service", "StatefulSet",
               "PodDisruptionBudget", "CronJob", "Ingress", "HTTPRoute", "BackendTLSPolicy", "ServiceMonitor",
               "PrometheusRule"]


def _apply_order(obj: dict[str, Any]) -> tuple[int, str, str]:
    meta = obj.get("metadata") or {}
    kind = obj.get("kind", "")
    rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
    return rank, meta.get("namespace") or "", meta.get("name") or ""


def _file_name(index: int, obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    parts = [f"{index:03d}", obj.get("kind", "Object").lower(), meta.get("namespace") or "cluster",
             meta.get("name") or "unnamed"]
    return re.sub(r"[^a-z0-9.-]+", "-", "-".join(parts).lower()) + ".yaml"


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def write_openbao_dir(run: ProgramRun, raw: dict[str, Any], out: Path) -> None:
    """The files the pods read, from the ConfigMap and the Secrets the program created."""
    settings = parse_settings(raw, run.stack)
    cm = run.object("ConfigMap", f"{settings.name}-config")
    for name, content in cm["data"].items():
        _write_private(out / "config" / name, content.encode())
    tls_secret = run.object("Secret", f"{settings.name}-tls")["stringData"]
    for name in ("tls.crt", "tls.key", "ca.crt"):
        _write_private(out / "tls" / name, tls_secret[name].encode())
    for key_id, b64 in run.object("Secret", f"{settings.name}-unseal")["data"].items():
        _write_private(out / "unseal" / key_id, base64.b64decode(b64))
    try:
        for name, value in run.object("Secret", f"{settings.name}-init")["stringData"].items():
            _write_private(out / "init" / name, value.encode())
    except KeyError:
        pass  # userpass admin disabled: nothing to mount
    spec = spec_of(settings)  # the spec the cluster component builds from the stack's args
    pods = [{"name": f"{spec.name}-{i}", "host": spec.pod_dns_name(i), "env": pod_environment(spec, i)}
            for i in range(spec.replicas)]
    (out / "pods.json").write_text(json.dumps(pods, indent=2) + "\n")


def render(stack: str, out: Path, overrides: Optional[dict[str, Any]] = None,
           include_secrets: bool = False) -> ProgramRun:
    """Render ``stack`` into ``out`` (see module docstring). Returns the program run."""
    raw = stack_config(stack)
    for key, value in (overrides or {}).items():
        apply_override(raw, key, value)
    run = run_program(stack, raw)
    manifests = out / "manifests"
    manifests.mkdir(parents=True, exist_ok=True)
    for old in manifests.glob("*.yaml"):
        old.unlink()
    objects = sorted((manifest(reg, include_secrets) for reg in run.kubernetes_objects()), key=_apply_order)
    for i, obj in enumerate(objects):
        (manifests / _file_name(i, obj)).write_text(yaml.safe_dump(obj, sort_keys=False))
    resources = [{"type": r.type, "name": r.name, "urn": r.urn, "options": review_options(r.options),
                  "props": _normalise(redact(r.props, include_secrets))}
                 for r in run.registrations]
    (out / "resources.json").write_text(json.dumps(resources, indent=2) + "\n")
    write_openbao_dir(run, raw, out / "openbao")
    return run


def review_options(options: dict[str, Any]) -> dict[str, Any]:
    """The resource options a reviewer needs, without the empty defaults and the dependency list."""
    return {k: v for k, v in options.items() if v not in (False, [], {}, "") and k not in ("dependsOn", "parent")}


def parse_set(items: list[str]) -> dict[str, Any]:
    """``key.path=value`` pairs; values are JSON when they parse, else plain strings."""
    result: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SystemExit(f"--set {item!r}: use key.path=value, e.g. --set ingress.mode=gateway")
        try:
            result[key] = json.loads(value)
        except json.JSONDecodeError:
            result[key] = value
    return result


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.render", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", required=True, help="stack name: reads Pulumi.<stack>.yaml")
    parser.add_argument("--out", required=True, type=Path, help="output directory")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key by path, e.g. ingress.mode=gateway (repeatable)")
    parser.add_argument("--include-secrets", action="store_true",
                        help="write secret values into manifests/ and resources.json (test material only)")
    args = parser.parse_args(argv)
    try:
        run = render(args.stack, args.out, parse_set(args.set), args.include_secrets)
    except (SettingsError, FileNotFoundError) as err:
        print(f"render: {err}", file=sys.stderr)
        return 2
    print(f"rendered stack {args.stack}: {len(run.kubernetes_objects())} Kubernetes objects, "
          f"{len(run.registrations)} resources -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
