"""The multi-language component provider (provider/), driven the way the Pulumi engine drives it.

The plugin runs as the Python language host runs it, ``python provider <engine address>``,
with an Engine service this test serves on 127.0.0.1; the test reads the port the provider
prints and talks ResourceProvider gRPC to it: ``GetPluginInfo``, ``GetSchema`` (what
``pulumi package add`` generates every language's SDK from) and ``Construct`` (what a
TypeScript/Go/YAML program's ``new ClusterPki(...)`` turns into), the latter against a
ResourceMonitor the test serves with the unit tests' RecordingMonitor and crypto fakes.

What the schema must say is derived from the components themselves (each ``args`` TypedDict
and the ``pulumi.Output`` attributes, with their docstrings), so it cannot drift from the code;
``FACTS`` pins a few exact facts per component by hand, so a wrong derivation cannot hide.
"""

from __future__ import annotations

import ast
import base64
import collections.abc
import enum
import inspect
import json
import sys
import textwrap
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import grpc
import pulumi
import pytest
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.provider.experimental.analyzer import Analyzer
from pulumi.runtime.proto import engine_pb2_grpc, provider_pb2, resource_pb2_grpc

from tests.support.fakes import unwrap
from tests.support.package import IMPORT_NAME, PACKAGE, PROVIDER_DIR, ROOT, hosted_components, pyproject, token
from tests.support.provider_host import GrpcMonitor, Provider, RecordingEngine, serve, start_provider

#: The components the package serves, by hand: dropping one from provider/__main__.py fails.
#: OpenBaoPlatform is not one (it is the stack composition and takes the stack Settings).
EXPECTED_COMPONENTS = ["ClusterPki", "UnsealKey", "BootstrapCredentials", "OpenBaoCluster",
                       "OpenBaoNetworkPolicies", "OpenBaoEdge", "OpenBaoBackup", "OpenBaoMonitoring",
                       "OpenBaoConfiguration"]

REQUIRED, OPTIONAL = "required", "optional"

#: Exact facts per component, written by hand (a subset; the derived table checks the rest):
#: ``inputs``: {input: (schema type or the name of a package type, required?)};
#: ``wired``: inputs that take another resource's output (``pulumi.Input``, not plain: in
#: TypeScript ``cluster.tlsSecretName = pki.tlsSecretName`` must type-check);
#: ``outputs``: {output: schema type}. A component without an entry fails until it has one.
FACTS: dict[str, dict[str, Any]] = {
    "ClusterPki": {
        "inputs": {"name": ("string", REQUIRED), "namespace": ("string", REQUIRED), "dnsNames": ("array", OPTIONAL), "replicas": ("integer", OPTIONAL),
                   "ipAddresses": ("array", OPTIONAL), "serverValidityHours": ("integer", OPTIONAL),
                   "keyAlgorithm": ("string", OPTIONAL), "protect": ("boolean", OPTIONAL)},
        "wired": [],
        "outputs": {"caCertPem": "string", "tlsSecretName": "string", "caSecretName": "string",
                    "serverCertNotAfter": "string"},
    },
    "BootstrapCredentials": {
        "inputs": {"secretName": ("string", REQUIRED), "namespace": ("string", REQUIRED),
                   "passwordLength": ("integer", OPTIONAL), "passwordItem": ("string", OPTIONAL)},
        "wired": [],
        "outputs": {"secretName": "string", "adminPassword": "string"},
    },
    "UnsealKey": {
        "inputs": {"secretName": ("string", REQUIRED), "namespace": ("string", REQUIRED),
                   "keyVersion": ("integer", OPTIONAL), "previousKeyVersion": ("integer", OPTIONAL),
                   "labels": ("object", OPTIONAL), "protect": ("boolean", OPTIONAL)},
        "wired": [],
        "outputs": {"secretName": "string", "keyId": "string", "previousKeyId": "string"},
    },
    "OpenBaoCluster": {
        "inputs": {"name": ("string", REQUIRED), "namespace": ("string", REQUIRED),
                   "tlsSecretName": ("string", REQUIRED), "unsealSecretName": ("string", REQUIRED),
                   "replicas": ("integer", OPTIONAL), "image": ("ImageArgs", OPTIONAL),
                   "selfInit": ("ClusterSelfInitArgs", OPTIONAL)},
        "wired": ["tlsSecretName", "unsealSecretName"],
        "outputs": {"statefulSetName": "string", "serviceNames": "object"},
    },
    "OpenBaoNetworkPolicies": {
        "inputs": {"name": ("string", REQUIRED), "namespace": ("string", REQUIRED),
                   "clientNamespaces": ("array", OPTIONAL), "kubeApiPort": ("integer", OPTIONAL),
                   "dnsPodLabels": ("object", OPTIONAL)},
        "wired": [],
        "outputs": {"policyNames": "array"},
    },
    "OpenBaoEdge": {
        "inputs": {"name": ("string", REQUIRED), "namespace": ("string", REQUIRED), "mode": ("string", REQUIRED),
                   "host": ("string", OPTIONAL), "caCertPem": ("string", OPTIONAL)},
        "wired": ["caCertPem"],
        "outputs": {"url": "string"},
    },
    "OpenBaoBackup": {
        "inputs": {"name": ("string", REQUIRED), "namespace": ("string", REQUIRED),
                   "caSecretName": ("string", REQUIRED), "keep": ("integer", OPTIONAL),
                   "image": ("ImageArgs", OPTIONAL), "drill": ("DrillArgs", OPTIONAL),
                   "unsealSecretName": ("string", OPTIONAL)},
        "wired": ["caSecretName", "unsealSecretName"],
        "outputs": {"cronJobName": "string", "claimName": "string", "drillCronJobName": "string"},
    },
    "OpenBaoMonitoring": {
        "inputs": {"name": ("string", REQUIRED), "namespace": ("string", REQUIRED),
                   "caSecretName": ("string", REQUIRED), "serverCertRenewalTime": ("string", REQUIRED),
                   "replicas": ("integer", OPTIONAL)},
        "wired": ["caSecretName", "serverCertRenewalTime"],
        "outputs": {"ruleName": "string"},
    },
    "OpenBaoConfiguration": {
        "inputs": {"name": ("string", REQUIRED), "namespace": ("string", REQUIRED),
                   "caSecretName": ("string", REQUIRED), "schedule": ("string", OPTIONAL),
                   "image": ("ImageArgs", OPTIONAL)},
        "wired": ["caSecretName"],
        "outputs": {"jobName": "string", "cronJobName": "string", "configMapName": "string"},
    },
}


# --- the expected schema, derived from the Python annotations --------------------------------


@dataclass(frozen=True)
class Prop:
    """What the schema must say about one property."""

    python_name: str
    type: Optional[str]
    """Schema type (string, integer, number, boolean, array, object), or None for a $ref."""
    ref: Optional[str]
    required: bool
    plain: bool
    """A plain value, not a ``pulumi.Input``: other languages cannot pass a resource's output."""
    doc: str


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def attribute_docs(cls: type) -> dict[str, str]:
    """The docstring under each annotated attribute of ``cls`` and its bases (from the source)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass.__module__.startswith(("builtins", "typing", "pulumi")):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body  # type: ignore[attr-defined]
        for stmt, after in zip(body, body[1:] + [None]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)
                    and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                    and isinstance(after.value.value, str)):
                docs[stmt.target.id] = inspect.cleandoc(after.value.value)
    return docs


def _annotations(cls: type) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object, pulumi.Resource, pulumi.ComponentResource):
            continue
        out.update(inspect.get_annotations(klass))
    return {k: v for k, v in out.items() if not k.startswith("_")}


def describe(annotation: Any, *, plain: bool = True, optional: bool = False) -> tuple[Optional[str], Optional[str], bool, bool]:
    """(type, ref, plain, optional) of an annotation, the way the schema must render it."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Required, typing.NotRequired):
        return describe(args[0], plain=plain, optional=optional)
    if origin is pulumi.Output:
        return describe(args[0], plain=False, optional=optional)
    if origin is typing.Union:
        rest = [a for a in args if a is not type(None)]
        is_input = any(typing.get_origin(a) is collections.abc.Awaitable for a in rest)
        if is_input:  # pulumi.Input[T] = Union[T, Awaitable[T], Output[T]]
            rest = [a for a in rest if typing.get_origin(a) is not collections.abc.Awaitable
                    and not isinstance(a, typing.ForwardRef)]
        assert len(rest) == 1, f"unions are not supported by the component provider: {annotation}"
        return describe(rest[0], plain=plain and not is_input, optional=optional or type(None) in args)
    simple = {str: "string", int: "integer", float: "number", bool: "boolean"}
    if annotation in simple:
        return simple[annotation], None, plain, optional
    if origin in (list, collections.abc.Sequence) or annotation is list:
        return "array", None, plain, optional
    if origin in (dict, collections.abc.Mapping) or annotation is dict:
        return "object", None, plain, optional
    if annotation is Any:
        return None, "pulumi.json#/Any", plain, optional
    if isinstance(annotation, type) and (typing.is_typeddict(annotation) or issubclass(annotation, enum.Enum)
                                         or not annotation.__module__.startswith("builtins")):
        return None, f"#/types/{PACKAGE}:index:{annotation.__name__}", plain, optional
    raise AssertionError(f"no schema rendering known for {annotation!r}")


def expected_props(cls: type, *, outputs: bool) -> dict[str, Prop]:
    """The schema properties of a TypedDict (inputs) or of a component's Output attributes."""
    docs = attribute_docs(cls)
    required_keys = getattr(cls, "__required_keys__", None)
    props: dict[str, Prop] = {}
    for name, annotation in _annotations(cls).items():
        type_, ref, plain, optional = describe(annotation)
        required = (name in required_keys) if required_keys is not None else not optional
        props[camel(name)] = Prop(name, type_, ref, required, plain and not outputs, docs.get(name, ""))
    return props


def args_type(component: type) -> type:
    args = inspect.get_annotations(component.__init__).get("args")
    assert isinstance(args, type), (f"{component.__name__}.__init__'s `args` annotation is {args!r}, not a class: "
                                    "component modules must not use `from __future__ import annotations`")
    return args


def referenced_types(owner: type) -> dict[str, type]:
    """The package's own types (TypedDicts, enums) ``owner``'s properties refer to, recursively."""
    found: dict[str, type] = {}
    for annotation in _annotations(owner).values():
        for candidate in _leaves(annotation):
            if isinstance(candidate, type) and candidate.__name__ not in found and (
                    typing.is_typeddict(candidate) or issubclass(candidate, enum.Enum)):
                found[candidate.__name__] = candidate
                if typing.is_typeddict(candidate):
                    found.update(referenced_types(candidate))
    return found


def _leaves(annotation: Any) -> Iterator[Any]:
    args = typing.get_args(annotation)
    if not args:
        yield annotation
    for a in args:
        yield from _leaves(a)


# --- the provider, as the engine starts it --------------------------------------------------


@pytest.fixture(scope="module")
def engine() -> Iterator[tuple[RecordingEngine, str]]:
    servicer = RecordingEngine()
    server, address = serve(engine_pb2_grpc.add_EngineServicer_to_server, servicer)
    yield servicer, address
    server.stop(grace=None)


@pytest.fixture(scope="module")
def provider(engine: tuple[RecordingEngine, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    """The plugin, run from this source tree with the suite's venv (the repository is on
    PYTHONPATH, as the installed package is in the plugin's own venv), in a working directory
    that is not the repository (the language host runs plugins in the program's directory)."""
    running = start_provider(sys.executable, PROVIDER_DIR, engine[1],
                             cwd=tmp_path_factory.mktemp("program"), env={"PYTHONPATH": str(ROOT)})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def schema(provider: Provider) -> dict[str, Any]:
    response = provider.stub.GetSchema(provider_pb2.GetSchemaRequest(), timeout=60)
    return json.loads(response.schema)


class Hosted(dict):  # type: ignore[type-arg]
    """The hosted components by class name; a missing one fails with where to add it."""

    def __missing__(self, name: str) -> type:
        pytest.fail(f"{name} is not in COMPONENTS of provider/__main__.py")


@pytest.fixture(scope="module")
def hosted() -> dict[str, type]:
    return Hosted({c.__name__: c for c in hosted_components()})


def resource(schema: dict[str, Any], name: str) -> dict[str, Any]:
    resources = schema.get("resources", {})
    assert token(name) in resources, f"{token(name)} not in the schema; it has {sorted(resources)}"
    return resources[token(name)]


# --- GetPluginInfo / GetSchema --------------------------------------------------------------


def test_plugin_info_and_schema_carry_the_package_name_and_version(provider: Provider, schema: dict[str, Any]) -> None:
    version = pyproject()["project"]["version"]
    info = provider.stub.GetPluginInfo(empty_pb2.Empty(), timeout=30)
    assert info.version == version
    assert schema["name"] == PACKAGE == "openbao-platform"
    assert schema["version"] == version


def test_provider_hosts_exactly_the_reusable_components(hosted: dict[str, type], schema: dict[str, Any]) -> None:
    assert list(hosted) == EXPECTED_COMPONENTS
    assert sorted(schema["resources"]) == sorted(token(n) for n in EXPECTED_COMPONENTS)
    assert token("OpenBaoPlatform") not in schema["resources"]
    for name, cls in hosted.items():
        assert cls.__module__.split(".")[0] == IMPORT_NAME, f"{name} is not served from the package"


@pytest.mark.parametrize("name", EXPECTED_COMPONENTS)
def test_component_analyses(name: str, hosted: dict[str, type]) -> None:
    """Each component on its own through the provider host's analyzer: names the one that
    keeps the provider from starting, with the analyzer's error."""
    cls = hosted[name]
    try:
        result = Analyzer(PACKAGE).analyze([cls])
    except Exception as e:  # noqa: BLE001 - the message is the point
        pytest.fail(f"the component provider cannot analyse {name} ({cls.__module__}): {type(e).__name__}: {e}\n"
                    f"its __init__ must be `(self, name: str, args: {name}Args, opts: Optional[pulumi.ResourceOptions] = None)`"
                    f" with {name}Args a TypedDict, outputs `pulumi.Output[...]` attributes, and no "
                    "`from __future__ import annotations` in its module")
    assert name in result["component_definitions"]


@pytest.mark.parametrize("name", EXPECTED_COMPONENTS)
def test_component_schema(name: str, hosted: dict[str, type], schema: dict[str, Any]) -> None:
    cls = hosted[name]
    spec = resource(schema, name)
    assert spec.get("isComponent") is True
    assert spec.get("description") == inspect.cleandoc(cls.__doc__ or ""), f"{name}: class docstring"
    assert spec.get("description"), f"{name} needs a class docstring (the resource's description)"

    args = args_type(cls)
    assert typing.is_typeddict(args), f"{name}'s args ({args.__name__}) must be a TypedDict"
    want_in = expected_props(args, outputs=False)
    got_in = spec.get("inputProperties", {})
    assert sorted(got_in) == sorted(want_in), f"{name} inputs"
    assert sorted(spec.get("requiredInputs", [])) == sorted(k for k, p in want_in.items() if p.required)
    _check_props(name, "input", got_in, want_in)

    want_out = expected_props(cls, outputs=True)
    got_out = spec.get("properties", {})
    assert want_out, f"{name} declares no pulumi.Output attributes"
    assert sorted(got_out) == sorted(want_out), f"{name} outputs"
    assert sorted(spec.get("required", [])) == sorted(k for k, p in want_out.items() if p.required)
    _check_props(name, "output", got_out, want_out)

    facts = FACTS.get(name)
    assert facts, f"no hand-written FACTS for {name} in {Path(__file__).name}: add a few exact inputs and outputs"
    for prop, (type_, required) in facts["inputs"].items():
        assert prop in got_in, f"{name} has no input {prop}"
        assert schema_type(got_in[prop]) == type_, f"{name}.{prop}: {got_in[prop]}"
        assert (prop in spec.get("requiredInputs", [])) == (required == REQUIRED), f"{name}.{prop} {required}"
    for prop in facts["wired"]:
        assert not got_in[prop].get("plain"), f"{name}.{prop} must be a pulumi.Input: it takes another resource's output"
    for prop, type_ in facts["outputs"].items():
        assert prop in got_out, f"{name} has no output {prop}"
        assert schema_type(got_out[prop]) == type_, f"{name} output {prop}: {got_out[prop]}"

    for type_name, typ in referenced_types(args).items():
        spec_type = schema.get("types", {}).get(f"{PACKAGE}:index:{type_name}")
        assert spec_type is not None, f"{name}: type {type_name} missing from the schema"
        if typing.is_typeddict(typ):
            want = expected_props(typ, outputs=False)
            assert sorted(spec_type.get("properties", {})) == sorted(want), f"{type_name} properties"
            _check_props(type_name, "input", spec_type["properties"], want)


def schema_type(spec: dict[str, Any]) -> str:
    """A property's schema type, or the name of the package type it refers to."""
    ref = spec.get("$ref", "")
    return ref.rsplit(":", 1)[-1] if ref.startswith(f"#/types/{PACKAGE}:index:") else spec.get("type", ref)


def _check_props(owner: str, kind: str, got: dict[str, Any], want: dict[str, Prop]) -> None:
    for key, prop in want.items():
        spec = got[key]
        where = f"{owner} {kind} {key} ({prop.python_name})"
        assert prop.doc, f"{where} has no docstring (the line under the annotation): every property is described"
        assert spec.get("description") == prop.doc, f"{where}: description"
        if prop.ref:
            assert spec.get("$ref") == prop.ref, f"{where}: {spec}"
        else:
            assert spec.get("type") == prop.type, f"{where}: {spec}"
        assert bool(spec.get("plain")) == prop.plain, f"{where}: plain is {spec.get('plain')}"


# --- Construct ------------------------------------------------------------------------------

PROJECT, STACK = "consumer", "dev"
STACK_URN = f"urn:pulumi:{STACK}::{PROJECT}::pulumi:pulumi:Stack::{PROJECT}-{STACK}"


@pytest.fixture
def monitor() -> Iterator[tuple[GrpcMonitor, str]]:
    servicer = GrpcMonitor(PROJECT, STACK)
    server, address = serve(resource_pb2_grpc.add_ResourceMonitorServicer_to_server, servicer)
    yield servicer, address
    server.stop(grace=None)


def construct(provider: Provider, address: str, type_: str, name: str, inputs: dict[str, Any],
              dependencies: Optional[dict[str, list[str]]] = None) -> Any:
    """The engine's Construct call for a program's top-level ``new <Component>(name, inputs)``.

    Inputs travel as a ``google.protobuf.Struct`` (every number a double), and an input wired
    from another resource's output as its plain value plus that resource's URN in
    ``inputDependencies``.
    """
    struct = struct_pb2.Struct()
    struct.update(inputs)
    deps = {k: provider_pb2.ConstructRequest.PropertyDependencies(urns=v) for k, v in (dependencies or {}).items()}
    return provider.stub.Construct(provider_pb2.ConstructRequest(
        project=PROJECT, stack=STACK, organization="organization", monitorEndpoint=address, type=type_,
        name=name, parent=STACK_URN, inputs=struct, inputDependencies=deps, dryRun=False), timeout=120)


def test_construct_unseal_key(provider: Provider, monitor: tuple[GrpcMonitor, str]) -> None:
    """A program in another language creating an UnsealKey during a rotation: the engine's
    Construct call, the children the component registers with the engine, the outputs."""
    servicer, address = monitor
    response = construct(provider, address, token("UnsealKey"), "vault-unseal",
                         {"secretName": "vault-unseal", "namespace": "vault", "keyVersion": 2,
                          "previousKeyVersion": 1, "labels": {"team": "platform"}})

    component_urn = f"urn:pulumi:{STACK}::{PROJECT}::{token('UnsealKey')}::vault-unseal"
    assert response.urn == component_urn
    state = unwrap(json_format.MessageToDict(response.state))
    assert state == {"secretName": "vault-unseal", "keyId": "unseal-v2", "previousKeyId": "unseal-v1"}

    regs = {r.name: r for r in servicer.mocks.registrations}
    component = regs["vault-unseal"]
    assert component.type == token("UnsealKey") and not component.custom
    assert servicer.monitor.parents[component.urn] == STACK_URN
    assert component.urn in servicer.monitor.outputs_registered, "register_outputs was not called"

    keys = [regs["vault-unseal-v2"], regs["vault-unseal-v1"]]
    for key in keys:
        assert key.type == "random:index/randomBytes:RandomBytes" and key.plain_props["length"] == 32
        assert servicer.monitor.parents[key.urn] == component_urn
        assert key.options["protect"] is True, f"{key.name} must be protected"
    secret = regs["vault-unseal-secret"]
    assert secret.type == "kubernetes:core/v1:Secret"
    assert servicer.monitor.parents[secret.urn] == component_urn
    assert secret.options["protect"] is True and secret.options["retainOnDelete"] is True
    props = secret.plain_props
    assert props["metadata"] == {"name": "vault-unseal", "namespace": "vault", "labels": {"team": "platform"}}
    assert sorted(props["data"]) == ["unseal-v1", "unseal-v2"]
    assert all(len(base64.b64decode(v)) == 32 for v in props["data"].values())
    assert set(regs) == {"vault-unseal", "vault-unseal-v1", "vault-unseal-v2", "vault-unseal-secret"}


def test_construct_rejects_bad_args_before_registering_anything(provider: Provider,
                                                                  monitor: tuple[GrpcMonitor, str]) -> None:
    servicer, address = monitor
    with pytest.raises(grpc.RpcError) as raised:
        construct(provider, address, token("UnsealKey"), "bad", {"secretName": "Not_A_Name", "namespace": "vault"})
    assert "secret_name" in raised.value.details() and "Not_A_Name" in raised.value.details()
    with pytest.raises(grpc.RpcError) as missing:
        construct(provider, address, token("UnsealKey"), "bad", {"secretName": "vault-unseal"})
    assert missing.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert servicer.mocks.registrations == []


def test_construct_cluster_wired_to_another_resource(provider: Provider, monitor: tuple[GrpcMonitor, str]) -> None:
    """OpenBaoCluster from another language: integers (top-level and nested, sent as doubles)
    arrive as integers, and an input wired from another resource's output carries that
    dependency to the children that use it."""
    servicer, address = monitor
    pki_secret = f"urn:pulumi:{STACK}::{PROJECT}::{token('ClusterPki')}$kubernetes:core/v1:Secret::pki-tls"
    response = construct(provider, address, token("OpenBaoCluster"), "vault",
                         {"name": "vault", "namespace": "vault", "tlsSecretName": "vault-tls",
                          "unsealSecretName": "vault-unseal", "replicas": 5, "unseal": {"keyVersion": 2},
                          "selfInit": {"userpassAdmin": False, "peerWaitSeconds": 7}, "protect": False},
                         dependencies={"tlsSecretName": [pki_secret]})
    assert response.urn == f"urn:pulumi:{STACK}::{PROJECT}::{token('OpenBaoCluster')}::vault"
    state = unwrap(json_format.MessageToDict(response.state))
    assert state["statefulSetName"] == "vault"
    assert state["serviceNames"] == {"api": "vault", "active": "vault-active", "standby": "vault-standby",
                                     "headless": "vault-internal"}

    regs = {r.name: r for r in servicer.mocks.registrations}
    sts = regs["vault-statefulset"]
    assert servicer.monitor.parents[sts.urn] == response.urn
    assert pki_secret in sts.options["dependsOn"], "the wired input's dependency did not reach the StatefulSet"
    assert sts.options["protect"] is False
    pod = sts.plain_props["spec"]["template"]["spec"]
    assert sts.plain_props["spec"]["replicas"] == 5
    server = next(c for c in pod["containers"] if c["name"] == "openbao")
    env = {e["name"]: e.get("value") for e in server.get("env", [])}
    assert env["BAO_SELF_INIT_PEER_WAIT"] == "7"  # nested integer: "7", not "7.0"
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert any(v.get("secret", {}).get("secretName") == "vault-tls" for v in volumes.values())
    config = json.loads(regs["vault-config"].plain_props["data"]["server.json"])
    assert config["seal"]["static"]["current_key_id"] == "unseal-v2"
    assert len(config["storage"]["raft"]["retry_join"]) == 5
