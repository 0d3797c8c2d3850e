"""OpenBaoCluster: identity, RBAC, config, Services, the StatefulSet and its PDB.

The component takes exactly what the cluster consumes (``OpenBaoClusterArgs``), never the
stack settings. Its args are validated with the stack config's own rules into a
``ClusterSpec`` before anything registers, so bad args create nothing; the objects are built
from that spec by ``cluster_manifests`` and ``server_config`` (pure dicts) and registered
here with the typed pulumi-kubernetes classes, children of this component.
"""

import functools
from typing import Any, Mapping, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from openbao_platform import cluster_manifests as m
from openbao_platform.k8s_args import typed_kwargs as _body
from openbao_platform.lifecycle import STATEFULSET_TIMEOUTS, stateful
from openbao_platform.server_config import ClusterSpec, config_files
from openbao_platform.settings import (
    ArgsCheck,
    TopologySettings,
    _camel,
    _check_production_zones,
    _parse_replicas,
    _parse_tls_min_version,
    _parse_topology,
    _Reader,
)
from openbao_platform.image import ImageArgs
from openbao_platform.tokens import token, with_previous_token


class ClusterStorageArgs(TypedDict, total=False):
    """The PersistentVolumeClaims of each pod."""

    class_name: str
    """StorageClass of the claims; omit for the cluster's default class."""
    data_size: str
    """Size of the Raft data volume, at least 1Gi. Default 10Gi."""
    audit_size: str
    """Size of the audit log volume (with audit.file), at least 1Gi. Default 10Gi."""


class ClusterResourcesArgs(TypedDict, total=False):
    """Container requests and limits (always both are set)."""

    cpu_request: str
    """CPU request, no larger than cpu_limit. Default 250m."""
    memory_request: str
    """Memory request, no larger than memory_limit. Default 256Mi."""
    cpu_limit: str
    """CPU limit. Default 2."""
    memory_limit: str
    """Memory limit. Default 1Gi."""


class ClusterTopologyArgs(TypedDict, total=False):
    """Where the pods may be scheduled."""

    zones: list[str]
    """Zones the pods must run in (at least 3 with production); empty: spread over the zones the nodes carry."""
    zone_key: str
    """Node label naming a node's zone. Default topology.kubernetes.io/zone."""
    host_key: str
    """Node label naming a node, for one pod per host. Default kubernetes.io/hostname."""
    max_skew: int
    """Largest allowed difference in pod count between zones. Default 1."""


class ClusterUnsealArgs(TypedDict, total=False):
    """The static-seal key versions the seal stanza names (the unseal Secret's items ``unseal-v<N>``)."""

    key_version: int
    """Current key version; the seal reads unseal-v<N>. Default 1."""
    previous_key_version: int
    """The version being rotated away from, while the stored keys are re-wrapped; omit otherwise."""


class ClusterSelfInitArgs(TypedDict, total=False):
    """What the one bootstrapping node configures on empty storage (no root token, no recovery keys)."""

    enabled: bool
    """Self-initialise on empty storage, gated so only pod 0 bootstraps and only if no peer is initialised. Default true."""
    admin_service_account: str
    """ServiceAccount bound to the `admin` kubernetes auth role (created with automount off). Default openbao-admin."""
    userpass_admin: bool
    """Create the break-glass userpass admin whose password is the init Secret's admin-password. Default true."""
    admin_username: str
    """User name of the break-glass admin. Default admin."""
    kv_mount: str
    """Path of the KV v2 secrets engine self-init enables. Default secret."""
    autopilot_stabilization: str
    """Autopilot server_stabilization_time. Default 3s."""
    peer_wait_seconds: int
    """Seconds the bootstrap candidate waits for every peer to answer before asking again (1-300). Default 2."""


class ClusterAuditArgs(TypedDict, total=False):
    """Declarative audit devices (at least one)."""

    file: bool
    """Audit log to a file on its own volume. Default true."""
    stdout: bool
    """Audit log to the container log, a second device: with the file alone, a full audit volume refuses every request. Default true."""


class OpenBaoClusterArgs(TypedDict, total=False):
    """Inputs of OpenBaoCluster."""

    name: Required[str]
    """Name of the StatefulSet and prefix of every object and DNS name (DNS-1123 label, at most 40 characters)."""
    namespace: Required[str]
    """Namespace of the cluster (it must exist; Pod Security "restricted" is fine)."""
    tls_secret_name: Required[pulumi.Input[str]]
    """kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt, naming every pod's DNS name (ClusterPki.tls_secret_name)."""
    unseal_secret_name: Required[pulumi.Input[str]]
    """Opaque Secret holding the static-seal keys, one item per key id unseal-v<N> (UnsealKey.secret_name)."""
    init_secret_name: pulumi.Input[str]
    """Secret with the break-glass admin's admin-password item (BootstrapCredentials.secret_name); needed with self_init.userpass_admin."""
    replicas: int
    """Raft voters: odd, 1 to 7, at least 3 with production. Default 3."""
    production: bool
    """Production placement: one pod per host and zone spread required (not preferred), at least 3 replicas and zones, and the label the policy pack's HA rules key on. Default false."""
    tls_min_version: str
    """Lowest TLS version the listener speaks: tls12 (default) or tls13."""
    cluster_name: str
    """The cluster_name OpenBao reports. Default the name."""
    image: ImageArgs
    """The OpenBao container image."""
    storage: ClusterStorageArgs
    """The pods' volume claims."""
    resources: ClusterResourcesArgs
    """The server container's requests and limits."""
    topology: ClusterTopologyArgs
    """Where the pods may be scheduled."""
    unseal: ClusterUnsealArgs
    """The static-seal key versions the seal stanza names."""
    self_init: ClusterSelfInitArgs
    """What the bootstrapping node configures."""
    audit: ClusterAuditArgs
    """Declarative audit devices."""
    backup_auth_role: bool
    """Self-init creates the `backup` kubernetes auth role (snapshot read only) for the <name>-backup ServiceAccount OpenBaoBackup runs as. Default false."""
    reconciler_auth_role: bool
    """Self-init creates the `reconciler` kubernetes auth role for the <name>-reconciler ServiceAccount OpenBaoConfiguration runs as (policies tenant-*/shared-*, roles tenant-*, its ownership record; never admin). Default false."""
    unauthenticated_metrics: bool
    """Serve /v1/sys/metrics without a token, for a Prometheus the NetworkPolicies admit (no scrape credential to leak). Default false."""
    protect: bool
    """Refuse replacement and deletion of the StatefulSet (default true: a replacement would delete every voter at once)."""


#: Nested args -> the stack config section whose rules validate them (openbao_platform/settings.py SECTIONS).
_SECTIONS = {"image": "image", "storage": "storage", "resources": "resources", "topology": "topology",
             "unseal": "unseal", "self_init": "selfInit", "audit": "audit"}
_SECRETS = ("tls_secret_name", "unseal_secret_name", "init_secret_name")
_REQUIRED = {
    "name": "name the cluster with a short DNS-1123 label such as openbao",
    "namespace": "give the namespace the cluster runs in",
    "tls_secret_name": "pass the kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt (ClusterPki.tls_secret_name)",
    "unseal_secret_name": "pass the Secret holding the unseal-v<N> keys (UnsealKey.secret_name)",
}
_OPTIONS = ("replicas", "production", "tls_min_version", "cluster_name", "backup_auth_role",
            "reconciler_auth_role", "unauthenticated_metrics", "protect")


def _plain(value: Any) -> Any:
    """A value as an error message can show it (an Output where a plain value belongs shows as text)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _parse_options(r: _Reader) -> dict[str, Any]:
    """The top-level switches, with the stack config's rules for replicas and TLS."""
    r.unknown_keys("", [_camel(k) for k in OpenBaoClusterArgs.__annotations__])
    production = r.get("production", bool, False, "use true for production clusters")
    return {
        "production": production,
        "replicas": _parse_replicas(r, production),
        "tls_min_version": _parse_tls_min_version(r),
        "cluster_name": r.get("clusterName", str, None, "use a short name such as openbao-prod"),
        "backup_auth_role": r.get("backupAuthRole", bool, False, "use true or false"),
        "reconciler_auth_role": r.get("reconcilerAuthRole", bool, False, "use true or false"),
        "unauthenticated_metrics": r.get("unauthenticatedMetrics", bool, False, "use true or false"),
        "protect": r.get("protect", bool, True, "use true (the engine refuses to replace or delete the StatefulSet) "
                                                "or false (dev: `pulumi destroy` removes it)"),
    }


def _parse_topology_for(r: _Reader, replicas: int, production: bool) -> TopologySettings:
    topology = _parse_topology(r)
    _check_production_zones(r, topology, replicas, production)
    return topology


def cluster_spec(args: OpenBaoClusterArgs) -> ClusterSpec:
    """The validated spec (the stack config's own rules for every section), or ArgsError."""
    with ArgsCheck("OpenBaoCluster") as check:
        for key, fix in _REQUIRED.items():
            if args.get(key) is None:
                check.section("", {}, lambda r, key=key, fix=fix: r.fail(_camel(key), None, "is required", fix))
        for key in _SECRETS:  # an Output is checked by the API server when it resolves
            if isinstance(args.get(key), str):
                check.object_name(key, args.get(key))
        names = check.section("", {k: args.get(k) for k in ("name", "namespace")})
        extra = {k: _plain(v) for k, v in args.items() if k not in OpenBaoClusterArgs.__annotations__}
        options = check.section("", {**{k: args.get(k) for k in _OPTIONS}, **extra}, _parse_options)

        sections: dict[str, Any] = {}
        for key, section in _SECTIONS.items():
            value = _plain(args.get(key))
            if value is not None and not isinstance(value, Mapping):
                check.section("", {key: value}, lambda r, key=key: r.section(_camel(key)))  # "must be an object"
            parse = (functools.partial(_parse_topology_for, replicas=options["replicas"],
                                       production=options["production"]) if key == "topology" else None)
            sections[key] = check.section(section, value if isinstance(value, Mapping) else {}, parse, field=key)

        spec = ClusterSpec(name=names.name, namespace=names.namespace,
                           cluster_name=options.pop("cluster_name") or names.name, **options, **sections)
        if spec.init_mounted and args.get("init_secret_name") is None:
            check.section("", {}, lambda r: r.fail(
                "initSecretName", None, "is required while self_init.userpass_admin is on: self-init reads the "
                "break-glass admin's password from that Secret's admin-password item",
                "pass the Secret's name (BootstrapCredentials.secret_name), or set self_init.userpass_admin to false"))
        if spec.backup_auth_role and not spec.self_init.enabled:
            check.section("", {}, lambda r: r.fail(
                "backupAuthRole", True, "the backup role is created by self-init, which is off",
                "enable self_init, or set backup_auth_role to false"))
        if spec.reconciler_auth_role and not spec.self_init.enabled:
            check.section("", {}, lambda r: r.fail(
                "reconcilerAuthRole", True, "the reconciler role is created by self-init, which is off",
                "enable self_init, or set reconciler_auth_role to false (and bootstrap it by hand: docs/tenants.md)"))
    return spec


class OpenBaoCluster(pulumi.ComponentResource):
    """The HA OpenBao server on Raft storage: pods that unseal themselves, join over verified TLS and self-initialise once."""

    stateful_set_name: pulumi.Output[str]
    """Name of the StatefulSet (also the pod name prefix)."""
    service_names: pulumi.Output[dict[str, str]]
    """Role -> Service name: api, active, standby, headless."""
    service_account_name: pulumi.Output[str]
    """The server pods' ServiceAccount."""
    admin_service_account_name: pulumi.Output[str]
    """The ServiceAccount bound to the `admin` kubernetes auth role."""

    def __init__(self, name: str, args: OpenBaoClusterArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        s = cluster_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("OpenBaoCluster"), name, None, with_previous_token(opts, "openbao:cluster:OpenBaoCluster"))
        child = pulumi.ResourceOptions(parent=self)
        files = config_files(s)

        sa = k8s.core.v1.ServiceAccount(f"{name}-sa", **_body(m.service_account(s, m.server_service_account(s), True)),
                                        opts=child)
        admin_sa = k8s.core.v1.ServiceAccount(
            f"{name}-admin-sa", **_body(m.service_account(s, s.self_init.admin_service_account, False)), opts=child)
        role = k8s.rbac.v1.Role(f"{name}-role", **_body(m.role(s)), opts=child)
        k8s.rbac.v1.RoleBinding(f"{name}-rolebinding", **_body(m.role_binding(s)),
                                opts=pulumi.ResourceOptions(parent=self, depends_on=[role, sa]))
        k8s.rbac.v1.ClusterRoleBinding(f"{name}-auth-delegator", **_body(m.auth_delegator_binding(s)),
                                       opts=pulumi.ResourceOptions(parent=self, depends_on=[sa]))
        config = k8s.core.v1.ConfigMap(f"{name}-config", **_body(m.config_map(s, files)), opts=child)
        for svc in m.services(s):
            k8s.core.v1.Service(f"{name}-svc-{svc['metadata']['name']}", **_body(svc), opts=child)

        def statefulset_spec(secrets: list[Any]) -> dict[str, Any]:
            tls_name, unseal_name, init_name = secrets
            return m.stateful_set(s, files, tls_name, unseal_name, init_name)["spec"]

        sts_obj = m.stateful_set(s, files, "", "", None)
        # A replacement would delete every voter at once: protected, orphaning on delete, and
        # given the time a real multi-zone bring-up takes (openbao_platform/lifecycle.py).
        sts = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=sts_obj["metadata"],
            spec=pulumi.Output.all(args["tls_secret_name"], args["unseal_secret_name"], args.get("init_secret_name"))
            .apply(statefulset_spec),
            opts=stateful(self, s.protect, depends_on=[config, sa], custom_timeouts=STATEFULSET_TIMEOUTS),
        )
        pdb = m.pod_disruption_budget(s)
        if pdb is not None:
            k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", **_body(pdb), opts=child)

        self.stateful_set_name = sts.metadata.name
        self.service_names = pulumi.Output.from_input({"api": s.api_service, "active": s.active_service,
                                                       "standby": s.standby_service, "headless": s.headless_service})
        self.service_account_name = sa.metadata.name
        self.admin_service_account_name = admin_sa.metadata.name
        self.register_outputs({"stateful_set_name": self.stateful_set_name, "service_names": self.service_names,
                               "service_account_name": self.service_account_name,
                               "admin_service_account_name": self.admin_service_account_name})
