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
                properties=_struct(r["props"]), options=analyzer_pb2.AnalyzerResourceOptions())
            for r in resources])
        return self.stub.AnalyzeStack(request, timeout=120)

    def analyze_stack(self, resources: Sequence[Mapping[str, Any]], stack: str = "test") -> list[Diagnostic]:
        """Stack-level policies over all resources."""
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
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stderr.close()


def render_stack(stack: str, out_dir: Path, timeout: float = 600) -> list[dict[str, Any]]:
    """Run ``python -m tools.render --stack <stack> --out <dir>`` and load resources.json."""
    resources = json.loads((run_render(stack, out_dir, timeout=timeout) / "resources.json").read_text())
    if not isinstance(resources, list) or not resources:
        raise RuntimeError(f"{out_dir / 'resources.json'} holds no resources")
    return resources
