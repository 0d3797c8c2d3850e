"""A compliant production stack, as the engine would send it, for the policy tests to break.

Each resource is ``{"type", "name", "props"}`` with camelCase props shaped like the
Kubernetes object (what pulumi-kubernetes registers). The stack mirrors DESIGN.md: the
server config is JSON in the ``openbao-config`` ConfigMap, TLS comes from pulumi-tls, the
namespace denies by default, the ingress verifies the backend. Every test starts from a
fresh copy, changes one thing, and expects exactly the rule it targets to notice.
"""

from __future__ import annotations

import copy
import datetime
import json
from functools import lru_cache
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.policy.policy_harness import secret

NS = "openbao"
SELECTOR = {"app.kubernetes.io/name": "openbao", "app.kubernetes.io/instance": "openbao"}
SERVER_LABELS = {**SELECTOR, "app.kubernetes.io/component": "server"}
BACKUP_LABELS = {**SELECTOR, "app.kubernetes.io/component": "backup"}
IMAGE = "quay.io/openbao/openbao:2.7.2"

Stack = dict[str, dict[str, Any]]


@lru_cache(maxsize=1)
def pem_material() -> tuple[str, str]:
    """A real CA certificate (public, must pass) and an EC private key (must be caught)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "openbao test CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return cert_pem, key_pem


def server_config() -> dict[str, Any]:
    """The OpenBao server config as openbao_platform/server_config.py emits it (JSON)."""
    pods = [f"openbao-{i}.openbao-internal.{NS}.svc" for i in range(3)]
    return {
        "ui": True,
        "api_addr": f"https://$(POD_NAME).openbao-internal.{NS}.svc:8200",
        "cluster_addr": f"https://$(POD_NAME).openbao-internal.{NS}.svc:8201",
        "listener": [{"tcp": {
            "address": "[::]:8200", "cluster_address": "[::]:8201",
            "tls_cert_file": "/openbao/tls/tls.crt", "tls_key_file": "/openbao/tls/tls.key",
            "tls_min_version": "tls12",
        }}],
        "storage": {"raft": {
            "path": "/openbao/data", "performance_multiplier": 1,
            "retry_join": [{"leader_api_addr": f"https://{p}:8200", "leader_ca_cert_file": "/openbao/tls/ca.crt",
                            "leader_tls_servername": p} for p in pods],
        }},
        "seal": {"static": {"current_key_id": "unseal-v1", "current_key": "file:///openbao/unseal/unseal-v1"}},
        "service_registration": {"kubernetes": {}},
        "telemetry": {"disable_hostname": True, "prometheus_retention_time": "24h"},
        "audit": [{"file": {"path": "file", "options": {"file_path": "/openbao/audit/audit.log"}}}],
    }


START_SH = """#!/bin/sh
# Only the designated node may self-initialise, and only when no peer is initialised.
set -eu
export BAO_CACERT=/openbao/tls/ca.crt
ARGS="-config=/openbao/config/server.json"
if [ "${POD_NAME}" = "openbao-0" ]; then
  for peer in openbao-1 openbao-2; do
    if wget -q -O- --ca-certificate=/openbao/tls/ca.crt \\
         "https://${peer}.openbao-internal.openbao.svc:8200/v1/sys/init" | grep -q '"initialized":true'; then
      exec bao server ${ARGS}
    fi
  done
  ARGS="${ARGS} -config=/openbao/config/initialize.json"
fi
exec bao server ${ARGS}
"""


def _meta(name: str, labels: dict[str, str] | None = None, **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "labels": dict(labels or SELECTOR), **extra}


def _container(name: str, command: list[str]) -> dict[str, Any]:
    return {
        "name": name, "image": IMAGE, "command": command,
        "securityContext": {"runAsNonRoot": True, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}},
        "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
    }


def _pod_security() -> dict[str, Any]:
    return {"runAsNonRoot": True, "runAsUser": 100, "runAsGroup": 1000, "fsGroup": 1000,
            "seccompProfile": {"type": "RuntimeDefault"}}


def statefulset() -> dict[str, Any]:
    server = _container("openbao", ["/bin/sh", "/openbao/config/start.sh"])
    server["ports"] = [{"name": "https", "containerPort": 8200}, {"name": "cluster", "containerPort": 8201}]
    server["env"] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "BAO_K8S_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "BAO_K8S_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "BAO_ADDR", "value": "https://127.0.0.1:8200"},
        {"name": "BAO_CACERT", "value": "/openbao/tls/ca.crt"},
    ]
    server["readinessProbe"] = {"httpGet": {"path": "/v1/sys/health?standbyok=true", "port": 8200, "scheme": "HTTPS"}}
    server["livenessProbe"] = {"exec": {"command": ["bao", "status", "-ca-cert=/openbao/tls/ca.crt"]}}
    init = _container("wait-for-tls", ["/bin/sh", "-c", "test -s /openbao/tls/tls.crt"])
    return {
        "type": "kubernetes:apps/v1:StatefulSet", "name": "openbao-server",
        "props": {
            "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": _meta("openbao"),
            "spec": {
                "replicas": 3, "serviceName": "openbao-internal", "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "OnDelete"},
                "selector": {"matchLabels": SERVER_LABELS},
                "template": {
                    "metadata": {"labels": SERVER_LABELS},
                    "spec": {
                        "serviceAccountName": "openbao", "securityContext": _pod_security(),
                        "initContainers": [init], "containers": [server],
                        "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
                            {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": SERVER_LABELS}}]}},
                        "topologySpreadConstraints": [{"topologyKey": "topology.kubernetes.io/zone", "maxSkew": 1,
                                                       "whenUnsatisfiable": "DoNotSchedule",
                                                       "labelSelector": {"matchLabels": SERVER_LABELS}}],
                        "volumes": [
                            {"name": "config", "configMap": {"name": "openbao-config"}},
                            {"name": "tls", "secret": {"secretName": "openbao-tls"}},
                            {"name": "unseal", "secret": {"secretName": "openbao-unseal"}},
                            {"name": "tmp", "emptyDir": {}},
                        ],
                    },
                },
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                    "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}}],
            },
        },
    }


def cronjob() -> dict[str, Any]:
    job = _container("snapshot", ["/bin/sh", "-c", "bao operator raft snapshot save /backup/snap.db"])
    job["env"] = [{"name": "BAO_ADDR", "value": f"https://openbao-active.{NS}.svc:8200"},
                  {"name": "BAO_CACERT", "value": "/openbao/tls/ca.crt"}]
    return {
        "type": "kubernetes:batch/v1:CronJob", "name": "openbao-backup",
        "props": {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": _meta("openbao-backup", BACKUP_LABELS),
                  "spec": {"schedule": "0 */6 * * *", "jobTemplate": {"spec": {"template": {
                      "metadata": {"labels": BACKUP_LABELS},
                      "spec": {"serviceAccountName": "openbao-backup", "restartPolicy": "OnFailure",
                               "securityContext": _pod_security(), "containers": [job]}}}}}},
    }


def _netpol(handle: str, name: str, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return handle, {"type": "kubernetes:networking.k8s.io/v1:NetworkPolicy", "name": f"openbao-{name}",
                    "props": {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                              "metadata": _meta(f"openbao-{name}"), "spec": spec}}


def baseline() -> Stack:
    """A fresh copy of the compliant production stack, keyed by handle."""
    return copy.deepcopy(_baseline())


@lru_cache(maxsize=1)
def _baseline() -> Stack:
    ca_pem, _ = pem_material()
    k8s = "kubernetes:"
    stack: Stack = {
        "namespace": {"type": f"{k8s}core/v1:Namespace", "name": "openbao-ns",
                      "props": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}},
        "sa": {"type": f"{k8s}core/v1:ServiceAccount", "name": "openbao-sa",
               "props": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("openbao")}},
        "sa_backup": {"type": f"{k8s}core/v1:ServiceAccount", "name": "openbao-backup-sa",
                      "props": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("openbao-backup")}},
        "sa_admin": {"type": f"{k8s}core/v1:ServiceAccount", "name": "openbao-admin-sa",
                     "props": {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("openbao-admin"),
                               "automountServiceAccountToken": False}},
        "role": {"type": f"{k8s}rbac.authorization.k8s.io/v1:Role", "name": "openbao-role",
                 "props": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": _meta("openbao"),
                           "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "update", "patch"]}]}},
        "rolebinding": {"type": f"{k8s}rbac.authorization.k8s.io/v1:RoleBinding", "name": "openbao-rolebinding",
                        "props": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                                  "metadata": _meta("openbao"),
                                  "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "openbao"},
                                  "subjects": [{"kind": "ServiceAccount", "name": "openbao", "namespace": NS}]}},
        "crb": {"type": f"{k8s}rbac.authorization.k8s.io/v1:ClusterRoleBinding", "name": "openbao-auth-delegator",
                "props": {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                          "metadata": {"name": "openbao-auth-delegator", "labels": SELECTOR},
                          "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                      "name": "system:auth-delegator"},
                          "subjects": [{"kind": "ServiceAccount", "name": "openbao", "namespace": NS}]}},
        "config": {"type": f"{k8s}core/v1:ConfigMap", "name": "openbao-config",
                   "props": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("openbao-config"),
                             "data": {"server.json": json.dumps(server_config(), indent=2),
                                      "initialize.json": json.dumps({"initialize": [{"audit": {"requests": {}}}]}),
                                      "start.sh": START_SH}}},
        "ca_configmap": {"type": f"{k8s}core/v1:ConfigMap", "name": "openbao-ca-bundle",
                         "props": {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta("openbao-ca"),
                                   "data": {"ca.crt": ca_pem}}},
        "tls_secret": {"type": f"{k8s}core/v1:Secret", "name": "openbao-tls",
                       "props": {"apiVersion": "v1", "kind": "Secret", "metadata": _meta("openbao-tls"),
                                 "type": "kubernetes.io/tls",
                                 "stringData": secret({"tls.crt": ca_pem, "tls.key": "[secret]", "ca.crt": ca_pem})}},
        "unseal_secret": {"type": f"{k8s}core/v1:Secret", "name": "openbao-unseal",
                          "props": {"apiVersion": "v1", "kind": "Secret", "metadata": _meta("openbao-unseal"),
                                    "type": "Opaque", "data": secret({"unseal-v1": "c2VjcmV0"})}},
        "svc": {"type": f"{k8s}core/v1:Service", "name": "openbao-svc",
                "props": {"apiVersion": "v1", "kind": "Service", "metadata": _meta("openbao"),
                          "spec": {"selector": SERVER_LABELS, "ports": [{"name": "https", "port": 8200}]}}},
        "svc_active": {"type": f"{k8s}core/v1:Service", "name": "openbao-active-svc",
                       "props": {"apiVersion": "v1", "kind": "Service", "metadata": _meta("openbao-active"),
                                 "spec": {"selector": {**SERVER_LABELS, "openbao-active": "true"},
                                          "ports": [{"name": "https", "port": 8200}]}}},
        "statefulset": statefulset(),
        "pdb": {"type": f"{k8s}policy/v1:PodDisruptionBudget", "name": "openbao-pdb",
                "props": {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": _meta("openbao"),
                          "spec": {"maxUnavailable": 1, "selector": {"matchLabels": SERVER_LABELS}}}},
        "cronjob": cronjob(),
        "ingress": {"type": f"{k8s}networking.k8s.io/v1:Ingress", "name": "openbao-ingress",
                    "props": {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": _meta(
                        "openbao", annotations={
                            "nginx.ingress.kubernetes.io/backend-protocol": "HTTPS",
                            "nginx.ingress.kubernetes.io/proxy-ssl-verify": "on",
                            "nginx.ingress.kubernetes.io/proxy-ssl-secret": f"{NS}/openbao-ca",
                            "nginx.ingress.kubernetes.io/proxy-ssl-name": f"openbao-active.{NS}.svc",
                            "nginx.ingress.kubernetes.io/proxy-ssl-server-name": "on",
                            "cert-manager.io/cluster-issuer": "letsencrypt",
                        }),
                        "spec": {"ingressClassName": "nginx",
                                 "tls": [{"hosts": ["bao.example.com"], "secretName": "openbao-public-tls"}],
                                 "rules": [{"host": "bao.example.com", "http": {"paths": [{
                                     "path": "/", "pathType": "Prefix",
                                     "backend": {"service": {"name": "openbao-active", "port": {"number": 8200}}}}]}}]}}},
        "httproute": {"type": f"{k8s}gateway.networking.k8s.io/v1:HTTPRoute", "name": "openbao-route",
                      "props": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
                                "metadata": _meta("openbao"),
                                "spec": {"parentRefs": [{"name": "gateway", "namespace": "gateway-system"}],
                                         "hostnames": ["bao.example.com"],
                                         "rules": [{"backendRefs": [{"name": "openbao-active", "port": 8200}]}]}}},
        "backendtls": {"type": f"{k8s}gateway.networking.k8s.io/v1:BackendTLSPolicy", "name": "openbao-backend-tls",
                       "props": {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "BackendTLSPolicy",
                                 "metadata": _meta("openbao-active"),
                                 "spec": {"targetRefs": [{"group": "", "kind": "Service", "name": "openbao-active"}],
                                          "validation": {"caCertificateRefs": [{"group": "", "kind": "ConfigMap",
                                                                                "name": "openbao-ca"}],
                                                         "hostname": f"openbao-active.{NS}.svc"}}}},
        "ca_key": {"type": "tls:index/privateKey:PrivateKey", "name": "openbao-pki-ca-key",
                   "props": {"algorithm": "ECDSA", "ecdsaCurve": "P256"}},
        "ca_cert": {"type": "tls:index/selfSignedCert:SelfSignedCert", "name": "openbao-pki-ca-cert",
                    "props": {"isCaCertificate": True, "validityPeriodHours": 87600, "earlyRenewalHours": 8760,
                              "allowedUses": ["cert_signing", "crl_signing", "digital_signature"],
                              "privateKeyPem": secret("[secret]")}},
        "server_key": {"type": "tls:index/privateKey:PrivateKey", "name": "openbao-pki-server-key",
                       "props": {"algorithm": "RSA", "rsaBits": 3072}},
        "server_cert": {"type": "tls:index/locallySignedCert:LocallySignedCert", "name": "openbao-pki-server-cert",
                        "props": {"validityPeriodHours": 2160, "earlyRenewalHours": 720,
                                  "allowedUses": ["digital_signature", "key_encipherment", "server_auth", "client_auth"]}},
    }
    stack.update(dict([
        _netpol("np_deny", "default-deny", {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}),
        _netpol("np_api", "api", {
            "podSelector": {"matchLabels": SERVER_LABELS}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
                                   "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}},
                                  {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}},
                                  {"podSelector": {"matchLabels": BACKUP_LABELS}}],
                         "ports": [{"port": 8200, "protocol": "TCP"}]}]}),
        _netpol("np_cluster", "cluster", {
            "podSelector": {"matchLabels": SERVER_LABELS}, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": SERVER_LABELS}}],
                         "ports": [{"port": "https"}, {"port": "cluster"}]}]}),
        _netpol("np_egress", "egress", {
            "podSelector": {"matchLabels": SELECTOR}, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
                       {"to": [{"podSelector": {"matchLabels": SERVER_LABELS}}], "ports": [{"port": 8200}, {"port": 8201}]},
                       {"to": [{"ipBlock": {"cidr": "10.96.0.1/32"}}], "ports": [{"port": 443}]}]}),
    ]))
    return stack


def resources(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.values())
