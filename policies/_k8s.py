"""Kubernetes and OpenBao helpers shared by every rule module.

The rules see resources as the engine sends them: a Pulumi type token
(``kubernetes:apps/v1:StatefulSet``) and camelCase props shaped like the Kubernetes object.
Everything that knows that shape lives here, once: naming an object in a message, walking
pod templates and containers, matching label selectors, recognising OpenBao workloads and
Services, and reading the OpenBao server config (stored as JSON) out of ConfigMaps,
Secrets or environment variables. Helpers only read what they need, so an unknown preview
value elsewhere in the object does not stop a rule.

Preview unknowns. pulumi-policy hands rules the props behind a proxy that raises
``UnknownValueError`` on any access to an unknown value, and reports the whole rule as an
advisory "can't run policy ... during preview" for that resource (or, for a stack rule, for
the stack) (sdk/python/lib/pulumi_policy/proxy.py ``_raise_if_unknown`` and policy.py
``except UnknownValueError``, pulumi/pulumi-policy 805bcbc). Helpers that scan several values
(every data item of a ConfigMap or Secret) use ``known_value`` instead: an unknown value is
stepped over and recorded, the rule checks every known value (its violations stay
mandatory), and the rule wrapper re-raises the recorded error at the end, so the engine still
hears honestly that part of the object could not be checked (``deferring_unknowns``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, Mapping, Optional, Sequence

from pulumi_policy.proxy import UnknownValueError

#: Kinds whose pods the pod-hardening rules inspect, and where their pod template lives.
POD_TEMPLATE_PATHS: Mapping[str, tuple[str, ...]] = {
    "Pod": (),
    "Deployment": ("spec", "template"),
    "StatefulSet": ("spec", "template"),
    "DaemonSet": ("spec", "template"),
    "ReplicaSet": ("spec", "template"),
    "ReplicationController": ("spec", "template"),
    "Job": ("spec", "template"),
    "CronJob": ("spec", "jobTemplate", "spec", "template"),
}
WORKLOAD_KINDS = frozenset(POD_TEMPLATE_PATHS)

#: Kinds without a namespace: messages name them without one.
CLUSTER_SCOPED_KINDS = frozenset({
    "ClusterRole", "ClusterRoleBinding", "Namespace", "Node", "PersistentVolume", "StorageClass",
    "CustomResourceDefinition", "IngressClass", "PriorityClass", "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration", "GatewayClass",
})

#: The label every OpenBao pod and object carries (settings.selector_labels).
NAME_LABEL = "app.kubernetes.io/name"
OPENBAO = "openbao"
#: OpenBao's API port; a backend on it is OpenBao even when its name says otherwise.
OPENBAO_API_PORT = 8200
#: OpenBao's cluster port: Raft and request forwarding between the server pods only.
OPENBAO_CLUSTER_PORT = 8201

#: Top-level keys that make a JSON document an OpenBao server config.
_CONFIG_KEYS = frozenset({"listener", "storage", "ha_storage", "seal", "api_addr", "cluster_addr",
                          "initialize", "service_registration"})
#: Environment variables through which OpenBao (and Vault) accept an inline config.
CONFIG_ENV_VARS = frozenset({"BAO_LOCAL_CONFIG", "VAULT_LOCAL_CONFIG"})
#: An HCL config block at the start of a line: `listener "tcp" {`, `seal "static" {`, `storage "raft" {`.
_HCL_BLOCK = re.compile(r'^\s*(listener|seal|storage|ha_storage)\s+"?[a-z_]+"?\s*\{', re.MULTILINE)


# --------------------------------------------------------------------------------------
# Preview unknowns
# --------------------------------------------------------------------------------------

#: Unknown values the running rule stepped over (None outside ``deferring_unknowns``). A
#: ContextVar, because the analyzer may serve concurrent requests on several threads.
_SKIPPED: ContextVar[Optional[list[UnknownValueError]]] = ContextVar("openbao_policies_skipped", default=None)


def known_value(node: Any, key: Any, default: Any = None) -> Any:
    """``node[key]`` (``default`` when absent) that steps over an unknown preview value.

    Inside ``deferring_unknowns`` an unknown value is recorded and ``default`` returned, so the
    caller goes on with the values that are known; outside, the error propagates as usual.
    """
    try:
        return node[key] if isinstance(node, (Mapping, Sequence)) and not isinstance(node, str) else default
    except (KeyError, IndexError):
        return default
    except UnknownValueError as err:
        skipped = _SKIPPED.get()
        if skipped is None:
            raise
        skipped.append(err)
        return default


@contextmanager
def deferring_unknowns() -> Iterator[None]:
    """Run a rule to the end over what is known, then raise what it had to step over.

    The raised ``UnknownValueError`` names every skipped path; pulumi-policy turns it into the
    advisory "can't run policy ... during preview", after any violation already reported.
    """
    token = _SKIPPED.set([])
    try:
        yield
        skipped = _SKIPPED.get() or []
        if skipped:
            first = skipped[0]
            first.message = "; ".join(dict.fromkeys(e.message for e in skipped))
            raise first
    finally:
        _SKIPPED.reset(token)


# --------------------------------------------------------------------------------------
# Plain-value helpers
# --------------------------------------------------------------------------------------


def get_path(node: Any, *path: Any) -> Any:
    """Value at ``path`` (keys or list indexes), or None if any step is missing."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(node, Sequence) or isinstance(node, str) or step >= len(node):
                return None
            node = node[step]
        else:
            if not isinstance(node, Mapping) or step not in node:
                return None
            node = node[step]
    return node


def as_list(node: Any) -> list[Any]:
    """A list for list-or-object shapes (HCL-to-JSON writes blocks either way)."""
    if node is None or isinstance(node, (str, bytes)):
        return []
    if isinstance(node, Mapping):
        return [node]
    if isinstance(node, Sequence):
        return list(node)
    return []


def as_str_list(node: Any) -> list[str]:
    """The strings in a list field (verbs, resources, policyTypes ...)."""
    return [v for v in as_list(node) if isinstance(v, str)]


def as_int(value: Any) -> Optional[int]:
    """An integer from JSON (the Struct encoding turns every number into a float)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)) and float(value).is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?[0-9]+\s*", value):
        return int(value)
    return None


def truthy(value: Any) -> bool:
    """OpenBao parses booleans like Go's strconv.ParseBool; numbers other than 0 count too."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value.strip().lower() in ("1", "t", "true", "yes", "on")
    return False


def plain(value: Any) -> Any:
    """Plain dicts, lists and ints from the SDK's read-only proxies and Struct floats."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


def fmt(value: Any) -> str:
    """A short, JSON-ish rendering of a (non-secret) value for messages."""
    try:
        text = json.dumps(plain(value), default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# --------------------------------------------------------------------------------------
# Objects
# --------------------------------------------------------------------------------------


def kind_of(resource_type: str) -> Optional[str]:
    """``kubernetes:apps/v1:StatefulSet`` -> ``StatefulSet``; None for other providers."""
    parts = resource_type.split(":")
    if len(parts) == 3 and parts[0] == "kubernetes":
        return parts[2]
    return None


@dataclass(frozen=True)
class K8sObject:
    """A Kubernetes resource as the engine sent it, with the names messages need."""

    resource_type: str
    name: str
    urn: str
    props: Mapping[str, Any]

    @property
    def kind(self) -> str:
        return kind_of(self.resource_type) or self.resource_type

    @property
    def metadata(self) -> Mapping[str, Any]:
        meta = self.props.get("metadata")
        return meta if isinstance(meta, Mapping) else {}

    @property
    def namespace(self) -> str:
        ns = self.metadata.get("namespace")
        return ns if isinstance(ns, str) and ns else "default"

    @property
    def object_name(self) -> str:
        n = self.metadata.get("name")
        return n if isinstance(n, str) and n else self.name

    @property
    def labels(self) -> Mapping[str, Any]:
        labels = self.metadata.get("labels")
        return labels if isinstance(labels, Mapping) else {}

    @property
    def annotations(self) -> Mapping[str, Any]:
        ann = self.metadata.get("annotations")
        return ann if isinstance(ann, Mapping) else {}

    @property
    def spec(self) -> Mapping[str, Any]:
        spec = self.props.get("spec")
        return spec if isinstance(spec, Mapping) else {}

    @property
    def ref(self) -> str:
        """How messages name the object: ``StatefulSet openbao/openbao``."""
        if self.kind in CLUSTER_SCOPED_KINDS:
            return f"{self.kind} {self.object_name}"
        return f"{self.kind} {self.namespace}/{self.object_name}"


def objects_of_kind(objects: Iterable[K8sObject], *kinds: str) -> list[K8sObject]:
    """The Kubernetes objects of the given kinds."""
    return [o for o in objects if o.kind in kinds and o.resource_type.startswith("kubernetes:")]


# --------------------------------------------------------------------------------------
# Pods and containers
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PodTemplate:
    """The pod a workload runs: its labels, its spec, and the field path to the spec."""

    path: str
    labels: Mapping[str, Any]
    spec: Mapping[str, Any]


@dataclass(frozen=True)
class Container:
    """One container, init container or ephemeral container, with its field path."""

    path: str
    name: str
    body: Mapping[str, Any]

    @property
    def security_context(self) -> Mapping[str, Any]:
        sc = self.body.get("securityContext")
        return sc if isinstance(sc, Mapping) else {}

    @property
    def image(self) -> Optional[str]:
        image = self.body.get("image")
        return image if isinstance(image, str) else None


def pod_template(obj: K8sObject) -> Optional[PodTemplate]:
    """The pod template of a workload (a Pod is its own template); None for other kinds."""
    if obj.kind not in WORKLOAD_KINDS:
        return None
    steps = POD_TEMPLATE_PATHS[obj.kind]
    template = get_path(obj.props, *steps) if steps else obj.props
    if not isinstance(template, Mapping):
        return None
    spec = template.get("spec")
    labels = get_path(template, "metadata", "labels")
    return PodTemplate(
        path=".".join(steps + ("spec",)),
        labels=labels if isinstance(labels, Mapping) else {},
        spec=spec if isinstance(spec, Mapping) else {},
    )


def containers(pod: PodTemplate) -> Iterator[Container]:
    """Every container of a pod, init and ephemeral ones included."""
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for i, c in enumerate(as_list(pod.spec.get(field))):
            if isinstance(c, Mapping):
                name = c.get("name") if isinstance(c.get("name"), str) else str(i)
                yield Container(path=f"{pod.path}.{field}[{name}]", name=name, body=c)


def parse_image(ref: str) -> tuple[str, Optional[str], Optional[str]]:
    """``registry:5000/repo:tag@sha256:..`` -> (repository, tag, digest)."""
    name, _, digest = ref.partition("@")
    repo, tag = name, None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        repo, tag = name.rsplit(":", 1)
    return repo, (tag or None), (digest or None)


def is_openbao_pod(obj: K8sObject, pod: PodTemplate) -> bool:
    """OpenBao pods carry app.kubernetes.io/name=openbao or run an OpenBao image."""
    if pod.labels.get(NAME_LABEL) == OPENBAO or obj.labels.get(NAME_LABEL) == OPENBAO:
        return True
    return any(OPENBAO in parse_image(c.image)[0] for c in containers(pod) if c.image)


def is_openbao_server(obj: K8sObject) -> bool:
    """The OpenBao server is the StatefulSet whose pods are OpenBao pods."""
    pod = pod_template(obj)
    return obj.kind == "StatefulSet" and pod is not None and is_openbao_pod(obj, pod)


def container_ports(pod: PodTemplate) -> dict[str, int]:
    """Named container ports of a pod (NetworkPolicies may name them)."""
    ports: dict[str, int] = {}
    for c in containers(pod):
        for p in as_list(c.body.get("ports")):
            name, number = get_path(p, "name"), as_int(get_path(p, "containerPort"))
            if isinstance(name, str) and number is not None:
                ports[name] = number
    return ports


# --------------------------------------------------------------------------------------
# Label selectors
# --------------------------------------------------------------------------------------


def selector_is_empty(selector: Any) -> bool:
    """``{}``: no matchLabels and no matchExpressions, so it selects everything."""
    if not isinstance(selector, Mapping):
        return False
    return not selector.get("matchLabels") and not selector.get("matchExpressions")


def selector_matches(selector: Any, labels: Mapping[str, Any], *, missing_matches: bool) -> bool:
    """Whether a LabelSelector selects an object with ``labels``.

    ``missing_matches`` says what an absent selector means for the field (a NetworkPolicy's
    podSelector defaults to all pods; a PodDisruptionBudget's null selector selects none).
    """
    if selector is None:
        return missing_matches
    if not isinstance(selector, Mapping):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in as_list(selector.get("matchExpressions")):
        key, op = get_path(expr, "key"), get_path(expr, "operator")
        values = as_str_list(get_path(expr, "values"))
        present = key in labels
        if op == "In" and not (present and labels.get(key) in values):
            return False
        if op == "NotIn" and present and labels.get(key) in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
        if op not in ("In", "NotIn", "Exists", "DoesNotExist"):
            return False
    return True


# --------------------------------------------------------------------------------------
# OpenBao backends (Ingress / HTTPRoute)
# --------------------------------------------------------------------------------------


def is_openbao_backend(service_name: Any, port: Any) -> bool:
    """A backend is OpenBao when it targets the API port or a Service named for OpenBao."""
    if isinstance(service_name, str) and OPENBAO in service_name:
        return True
    return as_int(port) == OPENBAO_API_PORT


# --------------------------------------------------------------------------------------
# OpenBao server config
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigDoc:
    """One OpenBao config document and where it was found (for messages)."""

    where: str
    config: Mapping[str, Any]


def known_items(obj: K8sObject, field: str) -> Iterator[tuple[str, Any]]:
    """(key, value) of a map field (``data``, ``stringData``), stepping over unknown values
    (and a map that is unknown as a whole, as a Secret's data is in a first preview)."""
    mapping = known_value(obj.props, field)
    if not isinstance(mapping, Mapping):
        return
    for key in mapping:  # iterating keys never touches a value
        value = known_value(mapping, key)
        if value is not None:
            yield str(key), value


def _config_sources(obj: K8sObject) -> Iterator[tuple[str, str]]:
    """(where, text) for every known string that may hold OpenBao config in this object."""
    if obj.kind == "ConfigMap":
        for key, value in known_items(obj, "data"):
            if isinstance(value, str):
                yield f"data[{key}]", value
    elif obj.kind == "Secret":
        for key, value in known_items(obj, "stringData"):
            if isinstance(value, str):
                yield f"stringData[{key}]", value
        for key, value in known_items(obj, "data"):
            if isinstance(value, str):
                try:
                    yield f"data[{key}]", base64.b64decode(value, validate=True).decode("utf-8")
                except (binascii.Error, UnicodeDecodeError, ValueError):
                    continue
    else:
        pod = pod_template(obj)
        if pod is None:
            return
        for c in containers(pod):
            for env in as_list(c.body.get("env")):
                if get_path(env, "name") in CONFIG_ENV_VARS:
                    value = known_value(env, "value")
                    if isinstance(value, str):
                        yield f"{c.path}.env[{env['name']}]", value


def openbao_configs(obj: K8sObject) -> Iterator[ConfigDoc]:
    """Every OpenBao JSON config document the object carries."""
    for where, text in _config_sources(obj):
        if not text.lstrip().startswith("{"):
            continue
        try:
            doc = json.loads(text)
        except ValueError:
            continue
        if isinstance(doc, Mapping) and _CONFIG_KEYS & set(doc):
            yield ConfigDoc(where=where, config=doc)


def hcl_configs(obj: K8sObject) -> Iterator[str]:
    """Where the object carries OpenBao config as HCL, which these rules cannot verify."""
    for where, text in _config_sources(obj):
        if not text.lstrip().startswith("{") and _HCL_BLOCK.search(text):
            yield where


def stanzas(node: Any) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(type, body) of a labelled block in any JSON shape.

    ``listener`` may be ``[{"tcp": {...}}]``, ``{"tcp": {...}}`` or ``{"tcp": [{...}]}``;
    the same holds for ``seal`` and ``storage``.
    """
    for item in as_list(node):
        if not isinstance(item, Mapping):
            continue
        for block_type, body in item.items():
            for b in as_list(body):
                if isinstance(b, Mapping):
                    yield str(block_type), b
