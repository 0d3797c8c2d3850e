"""Talk to the policy pack the way the Pulumi engine does: over the Analyzer gRPC protocol.

The pack's ``__main__`` serves forever from its constructor, so it is never imported: it
runs as a subprocess (``python policies/__main__.py``), prints its port, and is driven
through ``AnalyzerStub``: ``GetAnalyzerInfo``, ``Configure`` (enforcement level and
properties per policy, as the engine sends them), ``Analyze`` per resource and
``AnalyzeStack`` over all of them. Shared by the policy tests and tools/bench_policy.py.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional, Sequence

import grpc
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from tests.support.process import stop
from tests.support.render_cli import run_render

ROOT = Path(__file__).resolve().parents[2]
PACK_DIR = ROOT / "policies"
PROJECT = "openbao-platform"

LEVELS = {
    "advisory": analyzer_pb2.ADVISORY,
    "mandatory": analyzer_pb2.MANDATORY,
    "disabled": analyzer_pb2.DISABLED,
    "remediate": analyzer_pb2.REMEDIATE,
}
LEVEL_NAMES = {v: k for k, v in LEVELS.items()}
#: The engine's marker for a secret value inside a property map.
SECRET_SIG = {"4dabf18193072939515e22adb298388d": "1b47061264138c4ac30d75fd1eb44270"}
#: How the engine sends a value it cannot know yet (preview). The Python SDK sends every unknown
#: input as this string sentinel (pulumi/pulumi sdk/python/lib/pulumi/runtime/rpc.py ``UNKNOWN``);
#: the engine reads it as ``Computed{Element: ""}`` and, marshalling the props for the analyzer
#: with ``KeepUnknowns: true`` (sdk/go/common/resource/plugin/analyzer_plugin.go ``Analyze`` and
#: ``AnalyzeStack``), writes it back as ``UnknownStringValue``, the same string
#: (sdk/go/common/resource/plugin/rpc.go ``marshalUnknownProperty``), all at pulumi/pulumi
#: 1b59498. pulumi-policy treats it (and the other six typed sentinels) as unknown
#: (sdk/python/lib/pulumi_policy/proxy.py ``_is_unknown``, pulumi/pulumi-policy 805bcbc).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"
#: The start of the advisory pulumi-policy reports instead of running a rule that touched an
#: unknown value (policy.py ``_PolicyAnalyzerServicer.Analyze``/``AnalyzeStack``, ``except
#: UnknownValueError``, pulumi/pulumi-policy 805bcbc).
CANNOT_RUN_IN_PREVIEW = "can't run policy"


def secret(value: Any) -> dict[str, Any]:
    """A property value wrapped as a Pulumi secret, as the engine sends it."""
    return {**SECRET_SIG, "value": value}


@dataclass(frozen=True)
class Diagnostic:
    """One policy violation as the engine receives it."""

    policy: str
    level: str
    message: str
    urn: str


def cannot_run_in_preview(d: Diagnostic) -> bool:
    """Whether pulumi-policy downgraded the rule to "can't run policy ... during preview"."""
    return d.level == "advisory" and d.message.startswith(CANNOT_RUN_IN_PREVIEW) and "during preview" in d.message


def engine_value(value: Any) -> Any:
    """A mock-input value as the engine sends it to the analyzer: ``pulumi.output.Unknown``
    becomes the ``UNKNOWN`` sentinel string; secret wrappers stay (the engine keeps secrets)."""
    from pulumi.output import Unknown

    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        return {k: engine_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [engine_value(v) for v in value]
    return value


def _computed_outputs(resource_type: str) -> list[str]:
    """Output properties of a tls/random resource that are not inputs: what the provider
    computes, and what a preview leaves unknown. Read off the installed pulumi_tls and
    pulumi_random SDK classes (their ``@pulumi.getter(name=...)`` properties minus those of
    the ``*Args`` class), so the list follows the pinned provider versions."""
    import pulumi_random
    import pulumi_tls

    classes = {
        "tls:index/privateKey:PrivateKey": (pulumi_tls.PrivateKey, pulumi_tls.PrivateKeyArgs),
        "tls:index/selfSignedCert:SelfSignedCert": (pulumi_tls.SelfSignedCert, pulumi_tls.SelfSignedCertArgs),
        "tls:index/certRequest:CertRequest": (pulumi_tls.CertRequest, pulumi_tls.CertRequestArgs),
        "tls:index/locallySignedCert:LocallySignedCert": (pulumi_tls.LocallySignedCert,
                                                          pulumi_tls.LocallySignedCertArgs),
        "random:index/randomBytes:RandomBytes": (pulumi_random.RandomBytes, pulumi_random.RandomBytesArgs),
        "random:index/randomPassword:RandomPassword": (pulumi_random.RandomPassword,
                                                       pulumi_random.RandomPasswordArgs),
    }
    if resource_type not in classes:
        return []

    def names(cls: type) -> set[str]:
        return {getattr(v.fget, "_pulumi_name", k) for k, v in vars(cls).items() if isinstance(v, property)}

    resource_cls, args_cls = classes[resource_type]
    return sorted(names(resource_cls) - names(args_cls))


def preview_resources(registrations: Iterable[Any]) -> list[dict[str, Any]]:
    """The resources of a first-preview run (``run_program(..., preview=True)``) as the engine
    hands them to the pack: ``props`` are the inputs (``Analyze`` sees the checked inputs,
    pulumi/pulumi pkg/resource/deploy/step_generator.go ``analyzeAll``) and ``outputs`` what the
    provider's preview Create returned (``AnalyzeStack`` sees ``v.Outputs``, same file, at
    1b59498): Kubernetes echoes its inputs, tls/random add their computed outputs as unknown."""
    out = []
    for reg in registrations:
        props = engine_value(reg.props)
        outputs = {**props, **{k: UNKNOWN for k in _computed_outputs(reg.type) if k not in props}}
        out.append({"type": reg.type, "name": reg.name, "props": props, "outputs": outputs})
    return out


def urn(resource_type: str, name: str, stack: str = "test") -> str:
    return f"urn:pulumi:{stack}::{PROJECT}::{resource_type}::{name}"


def _struct(props: Mapping[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(copy.deepcopy(dict(props)))
    return s


class PolicyAnalyzer:
    """A running policy pack and a gRPC stub to it."""

    def __init__(self, pack_dir: Path = PACK_DIR, python: str = sys.executable, *,
                 like_engine: bool = False, cwd: Optional[Path] = None) -> None:
        """Start the pack: ``python policies/__main__.py``, or with ``like_engine`` the way the
        CLI's analyzer plugin does (``python -u -m pulumi.policy <engine> <pack dir>``)."""
        command = ([python, "-u", "-m", "pulumi.policy", "127.0.0.1:0", str(pack_dir)] if like_engine
                   else [python, str(pack_dir / "__main__.py")])
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            command, cwd=str(cwd or pack_dir.parent),
            stdout=subprocess.PIPE, stderr=self._stderr, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode().strip()
        if not line.isdigit():
            self.process.kill()
            self.process.wait()
            self._stderr.seek(0)
            error = self._stderr.read().decode(errors="replace")
            self._stderr.close()
            raise RuntimeError(f"policy pack did not print its port (got {line!r}):\n{error}")
        self.port = int(line)
        self.channel = grpc.insecure_channel(f"127.0.0.1:{self.port}")
        grpc.channel_ready_future(self.channel).result(timeout=30)
        self.stub = analyzer_pb2_grpc.AnalyzerStub(self.channel)
        self.info = self.stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)

    # -- protocol -------------------------------------------------------------------------

    @property
    def policy_names(self) -> list[str]:
        return [p.name for p in self.info.policies]

    def configure(self, overrides: Optional[Mapping[str, Mapping[str, Any]]] = None) -> None:
        """Send a full config like the engine: every policy's level (pack default unless
        overridden) and properties. ``overrides`` maps policy name to
        ``{"enforcementLevel": "advisory", "prop": value, ...}``."""
        overrides = overrides or {}
        request = analyzer_pb2.ConfigureAnalyzerRequest()
        for policy in self.info.policies:
            wanted = dict(overrides.get(policy.name, {}))
            level = wanted.pop("enforcementLevel", LEVEL_NAMES[policy.enforcementLevel])
            config = analyzer_pb2.PolicyConfig(enforcementLevel=LEVELS[level])
            if wanted:
                config.properties.update(wanted)
            request.policyConfig[policy.name].CopyFrom(config)
        unknown = set(overrides) - set(self.policy_names)
        if unknown:
            raise KeyError(f"no such policies: {sorted(unknown)}")
        self.stub.Configure(request, timeout=30)

    def configure_from_file(self, path: Path) -> None:
        """Apply a --policy-pack-config JSON file the way the CLI reads it."""
        raw = json.loads(path.read_text())
        overrides: dict[str, dict[str, Any]] = {}
        base = raw.get("all")
        for name in self.policy_names:
            entry: dict[str, Any] = {"enforcementLevel": base} if isinstance(base, str) else {}
            value = raw.get(name)
            if isinstance(value, str):
                entry["enforcementLevel"] = value
            elif isinstance(value, Mapping):
                entry.update(value)
            if entry:
                overrides[name] = entry
        self.configure(overrides)

    @staticmethod
    def _diagnostics(response: analyzer_pb2.AnalyzeResponse, default_urn: str = "") -> list[Diagnostic]:
        return [Diagnostic(d.policyName, LEVEL_NAMES[d.enforcementLevel], d.message, d.urn or default_urn)
                for d in response.diagnostics]

    def analyze_raw(self, resource: Mapping[str, Any], stack: str = "test") -> analyzer_pb2.AnalyzeResponse:
        return self.stub.Analyze(analyzer_pb2.AnalyzeRequest(
            type=resource["type"], name=resource["name"], urn=urn(resource["type"], resource["name"], stack),
            properties=_struct(resource["props"]), options=analyzer_pb2.AnalyzerResourceOptions()), timeout=60)

    def analyze(self, resource: Mapping[str, Any], stack: str = "test") -> list[Diagnostic]:
        """Resource-level policies on one resource ({"type", "name", "props"})."""
        return self._diagnostics(self.analyze_raw(resource, stack), urn(resource["type"], resource["name"], stack))

    def analyze_stack_raw(self, resources: Sequence[Mapping[str, Any]], stack: str = "test") -> analyzer_pb2.AnalyzeResponse:
        request = analyzer_pb2.AnalyzeStackRequest(resources=[
            analyzer_pb2.AnalyzerResource(
                type=r["type"], name=r["name"], urn=urn(r["type"], r["name"], stack),
                properties=_struct(r.get("outputs", r["props"])), options=analyzer_pb2.AnalyzerResourceOptions())
            for r in resources])
        return self.stub.AnalyzeStack(request, timeout=120)

    def analyze_stack(self, resources: Sequence[Mapping[str, Any]], stack: str = "test") -> list[Diagnostic]:
        """Stack-level policies over all resources (their ``outputs`` when given, as the engine
        sends final outputs to AnalyzeStack; else ``props``)."""
        return self._diagnostics(self.analyze_stack_raw(resources, stack))

    def analyze_all(self, resources: Iterable[Mapping[str, Any]], stack: str = "test") -> list[Diagnostic]:
        """What the engine does in a preview: Analyze each resource, then AnalyzeStack."""
        resources = list(resources)
        out: list[Diagnostic] = []
        for r in resources:
            out += self.analyze(r, stack)
        return out + self.analyze_stack(resources, stack)

    def close(self) -> None:
        if getattr(self, "channel", None) is not None:
            self.channel.close()
        stop(self.process)
        self._stderr.close()


def render_stack(stack: str, out_dir: Path, timeout: float = 600) -> list[dict[str, Any]]:
    """Run ``python -m tools.render --stack <stack> --out <dir>`` and load resources.json."""
    resources = json.loads((run_render(stack, out_dir, timeout=timeout) / "resources.json").read_text())
    if not isinstance(resources, list) or not resources:
        raise RuntimeError(f"{out_dir / 'resources.json'} holds no resources")
    return resources
