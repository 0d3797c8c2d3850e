"""Run the real Pulumi program under ``set_mocks`` and capture what it registers.

Shared by the unit tests and ``tools.render`` so that what reviewers read is exactly what
the tests check. Stack config comes from ``Pulumi.<stack>.yaml`` (plus overrides), the
same file ``pulumi up`` reads.

``run_program(..., preview=True)`` runs it the way the engine runs the FIRST preview of a new
stack (see ``PreviewMocks``): every resource is a create, computed outputs of ``tls:*`` and
``random:*`` are unknown, Kubernetes resources echo their inputs. Each registration then
records which of its input paths are unknown (``Registration.unknown_paths``).
"""

from __future__ import annotations

import copy
import json
import runpy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.output import Unknown
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import rpc

from openbao_platform.settings import PROJECT
from tests.support.fakes import FAKES, unwrap

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Registration:
    """One RegisterResource call as the engine would see it."""

    type: str
    name: str
    props: dict[str, Any]
    custom: bool
    urn: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    """Resource options as the engine receives them (see ``RecordingMonitor``)."""
    unknown_paths: list[str] = field(default_factory=list)
    """Input paths whose value is unknown (only a preview run has any), e.g. ``stringData``."""

    @property
    def plain_props(self) -> dict[str, Any]:
        """Props with secret wrappers removed (for assertions; never print these)."""
        return unwrap(self.props)


def _options(request: Any) -> dict[str, Any]:
    """The lifecycle options of a RegisterResourceRequest, in the engine's own field names.

    ``MockResourceArgs`` carries no options, so the monitor reads them off the request the SDK
    sent: what a test asserts here is exactly what the engine would be told.
    """
    opts: dict[str, Any] = {
        "protect": request.protect if request.HasField("protect") else False,
        "retainOnDelete": request.retainOnDelete if request.HasField("retainOnDelete") else False,
        "deleteBeforeReplace": bool(request.deleteBeforeReplace),
        "ignoreChanges": list(request.ignoreChanges),
        "replaceOnChanges": list(request.replaceOnChanges),
        "aliases": [_alias(a) for a in request.aliases],
        "dependsOn": sorted(request.dependencies),
        "parent": request.parent,
        "provider": request.provider,
    }
    t = request.customTimeouts
    opts["customTimeouts"] = {k: getattr(t, k) for k in ("create", "update", "delete") if getattr(t, k)}
    if request.HasField("replacement_trigger"):
        opts["replacementTrigger"] = json_format.MessageToDict(request.replacement_trigger)
    return opts


def _alias(alias: Any) -> dict[str, Any]:
    if alias.urn:
        return {"urn": alias.urn}
    spec = json_format.MessageToDict(alias.spec)
    return {k: v for k, v in spec.items() if v not in ("", False)}


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """A mock monitor that keeps each request's URN and options for the registration it makes."""

    def __init__(self, mocks: "RecordingMocks") -> None:
        super().__init__(mocks)
        self.recording = mocks

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """The engine's URN: the parent's full qualified type chain, the root Stack left out.

        The SDK's MockMonitor keeps only the parent's last type and keeps ``pulumi:pulumi:Stack``;
        the engine does neither (pulumi/pulumi pkg/resource/deploy/deployment.go,
        ``Deployment.generateURN``, at 1b59498). The committed URN list must be the real one.
        """
        qualified = parent.split("::")[2] if parent else ""
        if qualified and qualified != "pulumi:pulumi:Stack":
            type_ = f"{qualified}${type_}"
        return "urn:pulumi:" + "::".join([pulumi.get_stack(), pulumi.get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.recording.attach(request.type, request.name, response.urn, _options(request))
        return response


def is_unknown(value: Any) -> bool:
    """Whether a mock input is unknown.

    The SDK sends an unresolved Output as the string sentinel ``rpc.UNKNOWN``
    ("04da6b54-80e4-46f7-96ec-b56ff0331ba9", pulumi/pulumi sdk/python/lib/pulumi/runtime/rpc.py
    ``serialize_property``, at 1b59498) and ``MockMonitor.RegisterResource`` deserializes the
    request with ``rpc.deserialize_property``, which under ``preview=True`` (dry run) turns
    that sentinel into a ``pulumi.output.Unknown`` instance (``if value == UNKNOWN: return
    Unknown() if settings.is_dry_run() ...``). So in ``MockResourceArgs.inputs`` an unknown is
    an ``Unknown`` object; a secret unknown is a secret wrapper around one.
    """
    return isinstance(value, Unknown)


def unknown_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths (list items as ``[i]``) of the unknown values in mock inputs; secret
    wrappers are transparent."""
    if is_unknown(value):
        return [path or "."]
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return unknown_paths(value.get("value"), path)
        return [p for k, v in value.items() for p in unknown_paths(v, f"{path}.{k}" if path else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in unknown_paths(v, f"{path}[{i}]")]
    return []


class RecordingMocks(pulumi.runtime.Mocks):
    """Mocks that record every registration and answer tls/random with real crypto."""

    def __init__(self) -> None:
        self.registrations: list[Registration] = []
        self._lock = threading.Lock()

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[Optional[str], dict]:
        with self._lock:
            self.registrations.append(Registration(args.typ, args.name, copy.deepcopy(args.inputs),
                                                   bool(args.custom), unknown_paths=unknown_paths(args.inputs)))
        return f"{args.name}-id", self.outputs(args)

    def outputs(self, args: pulumi.runtime.MockResourceArgs) -> dict:
        """What the provider returns from Create in ``pulumi up``: tls/random compute real
        material, everything else echoes its inputs."""
        fake = FAKES.get(args.typ)
        return fake(unwrap(args.inputs)) if fake else dict(args.inputs)

    def attach(self, typ: str, name: str, urn: str, options: dict[str, Any]) -> None:
        """Give the registration the monitor just made its URN and options."""
        with self._lock:
            for reg in reversed(self.registrations):
                if reg.type == typ and reg.name == name and not reg.urn:
                    reg.urn, reg.options = urn, options
                    return
        raise AssertionError(f"monitor saw {typ} {name} but the mocks did not")

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict, Optional[list[tuple[str, str]]]]:
        raise NotImplementedError(f"the program must not call provider functions ({args.token})")


class PreviewMocks(RecordingMocks):
    """The providers as they answer the engine in the first preview of a new stack.

    Every resource is a create with ``preview: true`` (pulumi/pulumi pkg/resource/deploy/step.go
    ``CreateStep.Apply`` passes ``Preview: s.deployment.opts.DryRun`` to the provider, at 1b59498).

    * ``kubernetes:*`` echoes its inputs: pulumi-kubernetes ``Create`` returns
      ``req.GetProperties()`` unchanged when the inputs contain a computed value, the GVK is
      not installed, or client-side apply is on (``skipPreview`` in
      provider/pkg/provider/provider.go, at 94977969d); a server-side dry run returns the
      object as the API server would store it, inputs included. Either way what the program
      set (``metadata.name`` first) stays known, and an unknown input stays unknown.
    * ``tls:*`` and ``random:*`` return no computed outputs (keys, PEMs, random bytes,
      validity times): the mock returns only the inputs, so the SDK resolves every other
      output property as unknown (``resolve_properties``: a missing output is
      ``known = not settings.is_dry_run()``, pulumi sdk/python/lib/pulumi/runtime/rpc.py).
    """

    def outputs(self, args: pulumi.runtime.MockResourceArgs) -> dict:
        return dict(args.inputs)


def stack_config(stack: str, root: Path = ROOT) -> dict[str, Any]:
    """The raw ``openbao-platform:*`` values of ``Pulumi.<stack>.yaml``, keyed without prefix."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise FileNotFoundError(f"no stack file {path.name}; stacks: "
                                f"{', '.join(sorted(p.name[7:-5] for p in root.glob('Pulumi.*.yaml')))}")
    doc = yaml.safe_load(path.read_text()) or {}
    prefix = f"{PROJECT}:"
    return {k[len(prefix):]: v for k, v in (doc.get("config") or {}).items() if k.startswith(prefix)}


def apply_override(raw: dict[str, Any], dotted: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict (like ``pulumi config set --path``)."""
    node = raw
    parts = dotted.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def provider_config(stack: str, root: Path = ROOT) -> dict[str, str]:
    """The ``kubernetes:*`` provider settings of ``Pulumi.<stack>.yaml``, as the engine passes them."""
    path = root / f"Pulumi.{stack}.yaml"
    doc = (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}
    return {k: json.dumps(v) if isinstance(v, bool) else str(v)
            for k, v in (doc.get("config") or {}).items() if k.startswith("kubernetes:")}


def engine_config(raw: dict[str, Any]) -> dict[str, str]:
    """The flat map the engine hands the program: objects as JSON strings."""
    return {f"{PROJECT}:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


@dataclass
class ProgramRun:
    """Everything one program run registered and exported."""

    stack: str
    registrations: list[Registration]
    outputs: dict[str, Any] = field(default_factory=dict)
    preview: bool = False
    """Whether this was a first-preview run (``run_program(..., preview=True)``)."""

    def of_type(self, type_token: str) -> list[Registration]:
        return [r for r in self.registrations if r.type == type_token]

    def kubernetes_objects(self) -> list[Registration]:
        return [r for r in self.registrations if r.custom and r.type.startswith("kubernetes:")]

    def by_name(self, name: str) -> Registration:
        """The registration of that Pulumi resource name (names are unique per program)."""
        found = [r for r in self.registrations if r.name == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} resources named {name}")
        return found[0]

    def object(self, kind: str, name: str) -> dict[str, Any]:
        """The plain Kubernetes object of that kind and metadata.name."""
        for r in self.kubernetes_objects():
            props = r.plain_props
            if props.get("kind") == kind and (props.get("metadata") or {}).get("name") == name:
                return props
        raise KeyError(f"no {kind} named {name}")


def run_program(stack: str, raw: Optional[dict[str, Any]] = None, root: Path = ROOT, *,
                preview: bool = False) -> ProgramRun:
    """Run ``__main__.py`` for ``stack`` under mocks; wait for every output to resolve.

    ``preview=True``: run it as the engine's first preview of a new stack (``PreviewMocks``,
    ``set_mocks(preview=True)``); outputs that depend on tls/random results stay unknown.
    """
    raw = stack_config(stack, root) if raw is None else raw
    mocks = PreviewMocks() if preview else RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview, monitor=RecordingMonitor(mocks))
    pulumi.runtime.set_all_config({**provider_config(stack, root), **engine_config(raw)})
    outputs: dict[str, Any] = {}

    def program() -> pulumi.Output[Any]:
        namespace = runpy.run_path(str(root / "__main__.py"), run_name="__main__")
        exported = {k: v for k, v in namespace.items() if isinstance(v, pulumi.Output)}
        return pulumi.Output.all(*exported.values())

    @pulumi_mocks.test
    def run() -> pulumi.Output[Any]:
        return program()

    original_export = pulumi.export

    def capture_export(name: str, value: Any) -> None:
        outputs[name] = value
        original_export(name, value)

    pulumi.export = capture_export  # type: ignore[assignment]
    try:
        run()
    finally:
        pulumi.export = original_export  # type: ignore[assignment]
    return ProgramRun(stack=stack, registrations=mocks.registrations, outputs=outputs, preview=preview)


def resolve(value: Any) -> Any:
    """The plain value of an Output (or a plain value) after a run, secrets unwrapped."""
    if isinstance(value, pulumi.Output):
        from pulumi.runtime.sync_await import _sync_await

        return _sync_await(value.future())
    return value
