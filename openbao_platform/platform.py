"""OpenBaoPlatform: composes PKI, unseal key, credentials, cluster, network, edge, backup, monitoring.

Components never reach into each other's children: each one's outputs are passed to the
next as args. The namespace is created here so every namespaced object can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from openbao_platform.backup import DrillArgs, OpenBaoBackup, OpenBaoBackupArgs, RemoteBackupArgs
from openbao_platform.cluster import (
    ClusterAuditArgs,
    ClusterResourcesArgs,
    ClusterSelfInitArgs,
    ClusterStorageArgs,
    ClusterTopologyArgs,
    ClusterUnsealArgs,
    OpenBaoCluster,
    OpenBaoClusterArgs,
)
from openbao_platform.configuration import (
    ConfigurationPolicyArgs,
    ConfigurationRuleArgs,
    ConfigurationSecretEngineArgs,
    ConfigurationTenantArgs,
    OpenBaoConfiguration,
    OpenBaoConfigurationArgs,
)
from openbao_platform.credentials import BootstrapCredentials, BootstrapCredentialsArgs
from openbao_platform.edge import OpenBaoEdge, OpenBaoEdgeArgs
from openbao_platform.image import image_args
from openbao_platform.lifecycle import stateful
from openbao_platform.monitoring import OpenBaoMonitoring, OpenBaoMonitoringArgs, renewal_time
from openbao_platform.network import OpenBaoNetworkPolicies, OpenBaoNetworkPoliciesArgs
from openbao_platform.naming import ClusterNames
from openbao_platform.pki import ClusterPki, ClusterPkiArgs, server_dns_names
from openbao_platform.server_config import ADMIN_PASSWORD_FILE, API_PORT
from openbao_platform.settings import Settings
from openbao_platform.unseal import UnsealKey, UnsealKeyArgs
from openbao_platform.tokens import token, with_previous_token

#: Pod Security Admission labels: the namespace enforces "restricted".
POD_SECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/audit": "restricted",
    "pod-security.kubernetes.io/warn": "restricted",
}


#: The platform's Pulumi resource name. It is fixed, so no URN follows the ``name`` setting: a
#: rename of ``name`` changes only Kubernetes object names (which the engine refuses for the
#: protected ones) instead of deleting and re-creating the unseal key and the CA key.
RESOURCE_NAME = "openbao"
#: The platform's type token before the components became a package (openbao_platform/tokens.py).
PREVIOUS_TOKEN = "openbao:platform:OpenBaoPlatform"


def resource_options(settings: Settings) -> Optional[pulumi.ResourceOptions]:
    """Alias the platform name stacks used before it was fixed (the ``name`` setting).

    One alias on the root is enough: the engine derives every child's alias from its parent's
    when the child's name starts with the parent's (pulumi/pulumi
    pkg/resource/deploy/step_generator.go ``generateAliases``/``inheritedChildAlias``, 1b59498),
    which is how every child here is named.
    """
    if settings.name == RESOURCE_NAME:
        return None
    return pulumi.ResourceOptions(aliases=[pulumi.Alias(name=settings.name, type_=PREVIOUS_TOKEN)])


# --- Stack settings -> component args: the one place the stack config meets the components ---


def unseal_args(s: Settings) -> UnsealKeyArgs:
    args = UnsealKeyArgs(secret_name=f"{s.name}-unseal", namespace=s.namespace, key_version=s.unseal.key_version,
                         labels=s.common_labels, protect=s.protect)
    if s.unseal.previous_key_version is not None:
        args["previous_key_version"] = s.unseal.previous_key_version
    return args


def pki_args(s: Settings) -> ClusterPkiArgs:
    return ClusterPkiArgs(
        name=s.name, namespace=s.namespace,
        dns_names=server_dns_names(ClusterNames(name=s.name, namespace=s.namespace), s.replicas),
        ca_common_name=f"{s.name} {s.stack} CA", organization=s.pki.organization,
        ca_validity_hours=s.pki.ca_validity_hours, server_validity_hours=s.pki.server_validity_hours,
        early_renewal_hours=s.pki.early_renewal_hours, key_algorithm=s.pki.key_algorithm,
        ecdsa_curve=s.pki.ecdsa_curve, rsa_bits=s.pki.rsa_bits, labels=s.common_labels, protect=s.protect)


def credentials_args(s: Settings) -> BootstrapCredentialsArgs:
    return BootstrapCredentialsArgs(secret_name=f"{s.name}-init", namespace=s.namespace,
                                    password_item=ADMIN_PASSWORD_FILE, labels=s.common_labels)


def cluster_args(s: Settings, tls_secret_name: pulumi.Input[str], unseal_secret_name: pulumi.Input[str],
                 init_secret_name: Optional[pulumi.Input[str]] = None) -> OpenBaoClusterArgs:
    """The cluster of the stack: its sections field for field, and the switches other sections imply."""
    image = image_args(s.image)
    storage = ClusterStorageArgs(data_size=s.storage.data_size, audit_size=s.storage.audit_size)
    if s.storage.class_name:
        storage["class_name"] = s.storage.class_name
    r, t, si = s.resources, s.topology, s.self_init
    unseal = ClusterUnsealArgs(key_version=s.unseal.key_version)
    if s.unseal.previous_key_version is not None:
        unseal["previous_key_version"] = s.unseal.previous_key_version
    args = OpenBaoClusterArgs(
        name=s.name, namespace=s.namespace, tls_secret_name=tls_secret_name, unseal_secret_name=unseal_secret_name,
        replicas=s.replicas, production=s.production, tls_min_version=s.tls_min_version,
        cluster_name=f"{s.name}-{s.stack}", image=image, storage=storage,
        resources=ClusterResourcesArgs(cpu_request=r.cpu_request, memory_request=r.memory_request,
                                       cpu_limit=r.cpu_limit, memory_limit=r.memory_limit),
        topology=ClusterTopologyArgs(zones=list(t.zones), zone_key=t.zone_key, host_key=t.host_key,
                                     max_skew=t.max_skew),
        unseal=unseal,
        self_init=ClusterSelfInitArgs(enabled=si.enabled, admin_service_account=si.admin_service_account,
                                      userpass_admin=si.userpass_admin, admin_username=si.admin_username,
                                      kv_mount=si.kv_mount, autopilot_stabilization=si.autopilot_stabilization,
                                      peer_wait_seconds=si.peer_wait_seconds),
        audit=ClusterAuditArgs(file=s.audit.file, stdout=s.audit.stdout),
        backup_auth_role=s.backup.enabled, reconciler_auth_role=s.self_init.enabled,
        unauthenticated_metrics=s.monitoring.enabled, protect=s.protect)
    if init_secret_name is not None:
        args["init_secret_name"] = init_secret_name
    return args


def network_args(s: Settings) -> OpenBaoNetworkPoliciesArgs:
    net, ing = s.network, s.ingress
    args = OpenBaoNetworkPoliciesArgs(
        name=s.name, namespace=s.namespace,
        # Tenants reach the API by NetworkPolicy too; clientNamespaces stays for other clients.
        client_namespaces=list(net.client_namespaces) + [t.namespace for t in s.configuration.tenants],
        kube_api_cidrs=list(net.kube_api_cidrs), kube_api_port=net.kube_api_port,
        dns_namespace=net.dns_namespace, dns_pod_labels=dict(net.dns_pod_labels),
        allow_backup=s.backup.enabled, allow_monitoring=s.monitoring.enabled,
        allow_reconciler=s.self_init.enabled, monitoring_namespace=net.monitoring_namespace, monitoring_pod_labels=dict(net.monitoring_pod_labels))
    remote = s.backup.remote
    if s.backup.enabled and remote.enabled:
        args.update(backup_storage_cidrs=list(remote.endpoint_cidrs), backup_storage_port=remote.endpoint_port)
    # The edge peer: the ingress-nginx controller pods, or the Gateway's proxy pods (in the
    # Gateway's namespace unless the implementation runs them elsewhere).
    if ing.mode == "nginx":
        args.update(edge_namespace=ing.controller_namespace, edge_pod_labels=dict(ing.controller_pod_labels))
    elif ing.mode == "gateway":
        args.update(edge_namespace=ing.gateway_proxy_namespace or ing.gateway_namespace,
                    edge_pod_labels=dict(ing.gateway_proxy_pod_labels))
    return args


def edge_args(s: Settings, ca_cert_pem: pulumi.Input[str]) -> OpenBaoEdgeArgs:
    ing = s.ingress
    args = OpenBaoEdgeArgs(
        name=s.name, namespace=s.namespace, mode=ing.mode, ca_cert_pem=ca_cert_pem, tls_min_version=s.tls_min_version,
        class_name=ing.class_name, cert_manager_issuer_kind=ing.cert_manager_issuer_kind,
        external_dns=ing.external_dns, gateway_name=ing.gateway_name, gateway_namespace=ing.gateway_namespace)
    for key, value in (("host", ing.host), ("tls_secret_name", ing.tls_secret_name),
                       ("cert_manager_issuer", ing.cert_manager_issuer)):
        if value is not None:
            args[key] = value  # type: ignore[literal-required]
    return args


def backup_args(s: Settings, ca_secret_name: pulumi.Input[str]) -> OpenBaoBackupArgs:
    image = image_args(s.image)
    args = OpenBaoBackupArgs(name=s.name, namespace=s.namespace, ca_secret_name=ca_secret_name,
                             schedule=s.backup.schedule, keep=s.backup.keep, size=s.backup.size, image=image,
                             protect=s.protect)
    if s.storage.class_name:
        args["storage_class_name"] = s.storage.class_name
    if not s.backup.local:
        args["local"] = False
    r = s.backup.remote
    if r.enabled:
        remote = RemoteBackupArgs(enabled=True, endpoint=r.endpoint or "", bucket=r.bucket or "", prefix=r.prefix,
                                  region=r.region, keep=r.keep, keep_days=r.keep_days,
                                  endpoint_cidrs=list(r.endpoint_cidrs), endpoint_port=r.endpoint_port)
        if r.ca_secret_name:
            remote["ca_secret_name"] = r.ca_secret_name
        if r.credentials_secret_name:
            remote["credentials_secret_name"] = r.credentials_secret_name
        if r.service_account_annotations:
            remote["service_account_annotations"] = dict(r.service_account_annotations)
        args["remote"] = remote
    args["kv_mount"] = s.self_init.kv_mount
    d = s.backup.drill
    if r.enabled and d.enabled:
        args["drill"] = DrillArgs(enabled=True, schedule=d.schedule, credentials_secret_name=d.credentials_secret_name or "")
        args.update(unseal_secret_name=f"{s.name}-unseal", unseal_key_id=s.unseal.key_id,
                    dns_namespace=s.network.dns_namespace, dns_pod_labels=dict(s.network.dns_pod_labels))
        if s.unseal.previous_key_id:
            args["unseal_previous_key_id"] = s.unseal.previous_key_id
    return args


def configuration_args(s: Settings, ca_secret_name: pulumi.Input[str]) -> OpenBaoConfigurationArgs:
    """The declared tenants and policies, field for field (TTLs in seconds)."""
    c = s.configuration
    tenants = [ConfigurationTenantArgs(namespace=t.namespace, service_accounts=list(t.service_accounts), read=list(t.read),
                                       write=list(t.write), policies=list(t.policies), token_ttl=t.token_ttl,
                                       token_max_ttl=t.token_max_ttl) for t in c.tenants]
    policies = [ConfigurationPolicyArgs(name=p.name, rules=[ConfigurationRuleArgs(path=path, capabilities=list(caps))
                                                            for path, caps in p.rules]) for p in c.policies]
    engines = []
    for e in c.secret_engines:
        engine = ConfigurationSecretEngineArgs(name=e.name, type=e.type)
        for key in ("description", "default_lease_ttl", "max_lease_ttl", "max_versions", "cas_required"):
            if getattr(e, key) not in (None, ""):
                engine[key] = getattr(e, key)  # type: ignore[literal-required]
        engines.append(engine)
    return OpenBaoConfigurationArgs(name=s.name, namespace=s.namespace, ca_secret_name=ca_secret_name,
                                    kv_mount=s.self_init.kv_mount, tenants=tenants, policies=policies,
                                    secret_engines=engines, schedule=c.schedule, image=image_args(s.image))


def monitoring_args(s: Settings, ca_secret_name: pulumi.Input[str],
                    server_cert_not_after: pulumi.Input[str]) -> OpenBaoMonitoringArgs:
    """The renewal alert's time: the certificate's notAfter minus the stack's early-renewal window."""
    due = pulumi.Output.from_input(server_cert_not_after).apply(
        lambda t: renewal_time(t, s.pki.early_renewal_hours))
    args = OpenBaoMonitoringArgs(name=s.name, namespace=s.namespace, ca_secret_name=ca_secret_name,
                                 server_cert_renewal_time=due, server_cert_expiry_time=server_cert_not_after,
                                 replicas=s.replicas, release_label=s.monitoring.release_label)
    if s.backup.enabled:
        args["backup_schedule"] = s.backup.schedule
        if s.backup.remote.enabled and s.backup.drill.enabled:
            args["drill_schedule"] = s.backup.drill.schedule
    return args


@dataclass(frozen=True)
class OpenBaoPlatformArgs:
    """Inputs of OpenBaoPlatform."""

    settings: Settings


class OpenBaoPlatform(pulumi.ComponentResource):
    """Everything one stack deploys."""

    api_url: pulumi.Output[str]
    """Where clients reach the API (public host when published, else the active Service)."""
    ca_cert_pem: pulumi.Output[str]
    """The private CA clients trust (BAO_CACERT)."""
    namespace: str
    service_names: pulumi.Output[dict[str, str]]
    admin_password: Optional[pulumi.Output[str]]
    """Break-glass userpass admin password, secret; None when userpass admin is off."""

    def __init__(self, name: str, args: OpenBaoPlatformArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__(token("OpenBaoPlatform"), name, None, with_previous_token(opts, PREVIOUS_TOKEN))
        s = args.settings
        # Deleting the Namespace deletes every PVC in it (Raft data, audit logs, snapshots).
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": s.namespace, "labels": {**s.common_labels, **POD_SECURITY_LABELS}},
            opts=stateful(self, s.protect, retain=True),
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        pki = ClusterPki(f"{name}-pki", pki_args(s), opts=in_ns)
        unseal = UnsealKey(f"{name}-unseal", unseal_args(s), opts=in_ns)
        creds: Optional[BootstrapCredentials] = None
        if s.self_init.enabled and s.self_init.userpass_admin:
            creds = BootstrapCredentials(f"{name}-credentials", credentials_args(s), opts=in_ns)
        cluster = OpenBaoCluster(
            f"{name}-cluster",
            cluster_args(s, pki.tls_secret_name, unseal.secret_name, creds.secret_name if creds else None),
            opts=in_ns,
        )
        OpenBaoNetworkPolicies(f"{name}-network", network_args(s), opts=in_ns)
        if s.ingress.mode != "none":
            OpenBaoEdge(f"{name}-edge", edge_args(s, ca_cert_pem=pki.ca_cert_pem),
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, pki]))
        if s.backup.enabled:
            b_args = backup_args(s, ca_secret_name=pki.ca_secret_name)
            if "drill" in b_args:
                b_args["unseal_secret_name"] = unseal.secret_name  # the drill mounts it: ordered after it
            OpenBaoBackup(f"{name}-backup", b_args, opts=in_ns)
        if s.self_init.enabled:
            # The Job waits for the cluster: a reconcile needs a serving, initialised leader.
            OpenBaoConfiguration(f"{name}-configuration", configuration_args(s, ca_secret_name=pki.ca_secret_name),
                                 opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, cluster]))
        if s.monitoring.enabled:
            OpenBaoMonitoring(f"{name}-monitoring",
                              monitoring_args(s, ca_secret_name=pki.ca_secret_name,
                                              server_cert_not_after=pki.server_cert_not_after),
                              opts=in_ns)

        public = s.ingress.mode != "none" and s.ingress.host
        self.api_url = pulumi.Output.from_input(
            f"https://{s.ingress.host}" if public else f"https://{s.active_dns_name}:{API_PORT}")
        self.ca_cert_pem = pki.ca_cert_pem
        self.namespace = s.namespace
        self.service_names = cluster.service_names
        self.admin_password = creds.admin_password if creds else None
        self.register_outputs({"api_url": self.api_url, "ca_cert_pem": self.ca_cert_pem,
                               "namespace": self.namespace, "service_names": self.service_names,
                               "admin_password": self.admin_password})
