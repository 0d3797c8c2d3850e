"""A team's own program: a 3-node OpenBao in namespace `secrets`, from four of the components.

It takes only what it needs from openbao-platform (no stack settings of ours, no ingress,
backups or monitoring): the PKI, the unseal key, the HA cluster, and its own default-deny
NetworkPolicies admitting one client namespace. No break-glass userpass admin: the team
administers it through the kubernetes auth `admin` role.
"""

import pulumi
import pulumi_kubernetes as k8s

from openbao_platform import ClusterPki, OpenBaoCluster, OpenBaoNetworkPolicies, UnsealKey

NAME, NAMESPACE, REPLICAS = "vault", "secrets", 3

namespace = k8s.core.v1.Namespace("secrets", metadata={"name": NAMESPACE, "labels": {
    "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}},
    opts=pulumi.ResourceOptions(protect=True, retain_on_delete=True))
in_namespace = pulumi.ResourceOptions(depends_on=[namespace])

pki = ClusterPki("pki", {"name": NAME, "namespace": NAMESPACE, "replicas": REPLICAS}, opts=in_namespace)
unseal = UnsealKey("unseal", {"secret_name": f"{NAME}-unseal", "namespace": NAMESPACE}, opts=in_namespace)
cluster = OpenBaoCluster("cluster", {
    "name": NAME, "namespace": NAMESPACE, "replicas": REPLICAS,
    "tls_secret_name": pki.tls_secret_name, "unseal_secret_name": unseal.secret_name,
    "self_init": {"userpass_admin": False},
    "storage": {"data_size": "5Gi", "audit_size": "2Gi"},
}, opts=in_namespace)
OpenBaoNetworkPolicies("network", {
    "name": NAME, "namespace": NAMESPACE, "client_namespaces": ["payments"],
    "kube_api_cidrs": ["10.0.0.10/32"], "kube_api_port": 6443,
}, opts=in_namespace)

pulumi.export("ca_cert_pem", pki.ca_cert_pem)
pulumi.export("services", cluster.service_names)
