"""OpenBaoPlatform: composes PKI, unseal key, credentials, cluster, network, edge, backup, monitoring.

Components never reach into each other's children: each one's outputs are passed to the
next as args. The namespace is created here so every namespaced object can depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s

from components.backup import OpenBaoBackup, OpenBaoBackupArgs
from components.cluster import OpenBaoCluster, OpenBaoClusterArgs
from components.credentials import BootstrapCredentials, BootstrapCredentialsArgs
from components.edge import EdgeArgs, OpenBaoEdge
from components.lifecycle import stateful
from components.monitoring import OpenBaoMonitoring, OpenBaoMonitoringArgs
from components.network import NetworkPoliciesArgs, OpenBaoNetworkPolicies
from components.pki import ClusterPki, ClusterPkiArgs
from components.server_config import API_PORT
from components.settings import Settings
from components.unseal import UnsealKey, UnsealKeyArgs

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


def resource_options(settings: Settings) -> Optional[pulumi.ResourceOptions]:
    """Alias the platform name stacks used before it was fixed (the ``name`` setting).

    One alias on the root is enough: the engine derives every child's alias from its parent's
    when the child's name starts with the parent's (pulumi/pulumi
    pkg/resource/deploy/step_generator.go ``generateAliases``/``inheritedChildAlias``, 1b59498),
    which is how every child here is named.
    """
    if settings.name == RESOURCE_NAME:
        return None
    return pulumi.ResourceOptions(aliases=[pulumi.Alias(name=settings.name)])


# --- Stack settings -> component args: the one place the stack config meets the components ---


def unseal_args(s: Settings) -> UnsealKeyArgs:
    args = UnsealKeyArgs(secret_name=f"{s.name}-unseal", namespace=s.namespace, key_version=s.unseal.key_version,
                         labels=s.common_labels, protect=s.protect)
    if s.unseal.previous_key_version is not None:
        args["previous_key_version"] = s.unseal.previous_key_version
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
    service_names: dict[str, str]
    admin_password: Optional[pulumi.Output[str]]
    """Break-glass userpass admin password, secret; None when userpass admin is off."""

    def __init__(self, name: str, args: OpenBaoPlatformArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("openbao:platform:OpenBaoPlatform", name, None, opts)
        s = args.settings
        # Deleting the Namespace deletes every PVC in it (Raft data, audit logs, snapshots).
        ns = k8s.core.v1.Namespace(
            f"{name}-namespace",
            metadata={"name": s.namespace, "labels": {**s.common_labels, **POD_SECURITY_LABELS}},
            opts=stateful(self, s.protect, retain=True),
        )
        in_ns = pulumi.ResourceOptions(parent=self, depends_on=[ns])
        pki = ClusterPki(f"{name}-pki", ClusterPkiArgs(settings=s), opts=in_ns)
        unseal = UnsealKey(f"{name}-unseal", unseal_args(s), opts=in_ns)
        creds: Optional[BootstrapCredentials] = None
        if s.self_init.enabled and s.self_init.userpass_admin:
            creds = BootstrapCredentials(f"{name}-credentials", BootstrapCredentialsArgs(settings=s), opts=in_ns)
        cluster = OpenBaoCluster(
            f"{name}-cluster",
            OpenBaoClusterArgs(settings=s, tls_secret_name=pki.tls_secret_name,
                               unseal_secret_name=unseal.secret_name,
                               init_secret_name=creds.secret_name if creds else None),
            opts=in_ns,
        )
        OpenBaoNetworkPolicies(
            f"{name}-network",
            NetworkPoliciesArgs(settings=s),
            opts=in_ns)
        if s.ingress.mode != "none":
            OpenBaoEdge(f"{name}-edge", EdgeArgs(settings=s, ca_cert_pem=pki.ca_cert_pem),
                        opts=pulumi.ResourceOptions(parent=self, depends_on=[ns, pki]))
        if s.backup.enabled:
            OpenBaoBackup(f"{name}-backup", OpenBaoBackupArgs(settings=s, ca_secret_name=pki.ca_secret_name),
                          opts=in_ns)
        if s.monitoring.enabled:
            OpenBaoMonitoring(f"{name}-monitoring",
                              OpenBaoMonitoringArgs(settings=s, ca_secret_name=pki.ca_secret_name,
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
