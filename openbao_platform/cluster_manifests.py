"""Pure builders for the OpenBao cluster's Kubernetes objects (plain dicts, camelCase).

Kept apart from the ComponentResource so the objects can be unit-tested and validated
against the Kubernetes schema without an engine. Secure where the Helm chart is not: TLS
always on, Pod Security "restricted", read-only root filesystem, no IPC_LOCK (OpenBao 2.x
has no mlock), probes that verify TLS with our CA.

The builders take the validated ``ClusterSpec`` (openbao_platform/server_config.py). The shared
helpers other components use (``metadata``, ``service_account``, ``image_waivers``, the
security contexts) need only a cluster's names (``NamedCluster``), or an ``image`` as well.
"""

from __future__ import annotations

import hashlib
import shlex
from typing import Any, Optional, Protocol

from openbao_platform.lifecycle import ORPHAN_ON_DELETE, SKIP_AWAIT
from openbao_platform.naming import NamedCluster
from openbao_platform.server_config import (
    API_PORT,
    CLUSTER_PORT,
    PATHS,
    ClusterSpec,
    start_environment,
)
from openbao_platform.settings import ImageSettings

#: The image runs as this non-root uid/gid; >= 10000 keeps clear of host users.
RUN_AS_ID = 10100
#: Label OpenBao's Kubernetes service registration sets on every pod.
ACTIVE_LABEL = "openbao-active"
#: app.kubernetes.io/component of each Service (the ServiceMonitor selects the peers one).
PEERS_COMPONENT = "peers"
#: Annotation carrying the config hash, so a config change is visible on the pod template.
CONFIG_HASH_ANNOTATION = "openbao-platform/config-hash"
#: StatefulSet label of a production stack: the policy pack's HA rules apply to a StatefulSet
#: carrying it whatever --policy-pack-config says (policies/ha.py PRODUCTION_LABEL).
PRODUCTION_LABEL = "openbao-platform/production"

Obj = dict[str, Any]


class RunsImage(Protocol):
    """Anything that names the OpenBao image it runs (a ClusterSpec, the backup's spec)."""

    @property
    def image(self) -> ImageSettings: ...


def server_service_account(cluster: NamedCluster) -> str:
    """The ServiceAccount the server pods run as."""
    return cluster.name


def config_map_name(cluster: NamedCluster) -> str:
    return f"{cluster.name}-config"


def metadata(cluster: NamedCluster, name: str, **extra: Any) -> Obj:
    """Namespaced metadata with the common labels."""
    return {"name": name, "namespace": cluster.namespace, "labels": dict(cluster.common_labels), **extra}


def config_hash(files: dict[str, str]) -> str:
    """Stable hash over the config files (order-independent)."""
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()[:16]


#: Security-scan waivers, each with the reason it is safe here (checkov reads these annotations).
WAIVER_SA_TOKEN = ("CKV_K8S_38", "the server needs its ServiceAccount token: Kubernetes service registration "
                   "labels its own pod and the kubernetes auth method reviews client tokens")
WAIVER_PULL_POLICY = ("CKV_K8S_15", "IfNotPresent with a fixed version tag is reproducible; Always would stop "
                      "pods from restarting while the registry is unreachable")
WAIVER_DIGEST = ("CKV_K8S_43", "the image is pinned to the version tag the e2e suite runs; set image.digest to "
                 "pin by digest as well")


def image_waivers(runs: RunsImage) -> list[tuple[str, str]]:
    """Waivers every pod running the OpenBao image needs (no digest waiver once a digest is set)."""
    return [WAIVER_PULL_POLICY] + ([] if runs.image.digest else [WAIVER_DIGEST])


def waiver_annotations(waivers: list[tuple[str, str]]) -> dict[str, str]:
    """``checkov.io/skipN: CKV_ID=reason`` annotations."""
    return {f"checkov.io/skip{i}": f"{check}={reason}" for i, (check, reason) in enumerate(waivers, start=1)}


def service_account(cluster: NamedCluster, name: str, automount: bool) -> Obj:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": metadata(cluster, name),
            "automountServiceAccountToken": automount}


def role(spec: ClusterSpec) -> Obj:
    """Service registration updates its own pod's labels: pods get/update/patch, nothing else."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": metadata(spec, f"{spec.name}-discovery"),
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "update", "patch"]}]}


def role_binding(spec: ClusterSpec) -> Obj:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": metadata(spec, f"{spec.name}-discovery"),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f"{spec.name}-discovery"},
            "subjects": [{"kind": "ServiceAccount", "name": server_service_account(spec),
                          "namespace": spec.namespace}]}


def auth_delegator_binding(spec: ClusterSpec) -> Obj:
    """The kubernetes auth method reviews client tokens via the TokenReview API."""
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": f"{spec.namespace}-{spec.name}-auth-delegator",
                         "labels": dict(spec.common_labels)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:auth-delegator"},
            "subjects": [{"kind": "ServiceAccount", "name": server_service_account(spec),
                          "namespace": spec.namespace}]}


def config_map(spec: ClusterSpec, files: dict[str, str]) -> Obj:
    """The config directory. Nothing in it is secret: keys and passwords are files elsewhere."""
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata(spec, config_map_name(spec)),
            "data": dict(files)}


def _service(spec: ClusterSpec, name: str, component: str, selector: dict[str, str], ports: list[Obj],
             headless: bool = False, publish_not_ready: bool = False) -> Obj:
    body: Obj = {"type": "ClusterIP", "selector": selector, "ports": ports,
                 "publishNotReadyAddresses": publish_not_ready}
    if headless:
        body["clusterIP"] = "None"
    meta = metadata(spec, name, annotations=dict(SKIP_AWAIT))  # why: lifecycle.AWAIT_DECISIONS
    meta["labels"]["app.kubernetes.io/component"] = component
    return {"apiVersion": "v1", "kind": "Service", "metadata": meta, "spec": body}


def _port(name: str, port: int) -> Obj:
    return {"name": name, "port": port, "targetPort": port, "protocol": "TCP", "appProtocol": "https"}


def services(spec: ClusterSpec) -> list[Obj]:
    """Headless (peers, published before ready so joins resolve), API, active and standby."""
    sel = dict(spec.selector_labels)
    api = [_port("https", API_PORT)]
    return [
        _service(spec, spec.headless_service, PEERS_COMPONENT, sel,
                 api + [_port("cluster", CLUSTER_PORT)], headless=True, publish_not_ready=True),
        _service(spec, spec.api_service, "api", sel, api),
        _service(spec, spec.active_service, "active", {**sel, ACTIVE_LABEL: "true"}, api),
        _service(spec, spec.standby_service, "standby", {**sel, ACTIVE_LABEL: "false"}, api),
    ]


def _health_command(query: list[str]) -> list[str]:
    """`bao read sys/health` over loopback TLS verified with our CA (httpGet would skip it)."""
    return ["bao", "read", "-format=json", f"-address=https://127.0.0.1:{API_PORT}", f"-ca-cert={PATHS.ca_cert}",
            "sys/health", *query]


#: How Go's crypto/tls (the `bao` client) reports a certificate the server presented that fails
#: verification: outside its validity period, from another CA, or without the name. Only ever
#: printed after the server completed its half of the handshake.
CERT_VERIFICATION_FAILED = "tls: failed to verify certificate: x509: "


def _alive_command(query: list[str]) -> list[str]:
    """The verified health check, with one failure read as "alive": the server answered the TLS
    handshake but its certificate does not verify (expired, typically). Anything else (refused,
    timed out, an HTTP error) fails. See ``probes`` for why."""
    check = shlex.join(_health_command(query))
    script = (f'out=$({check} 2>&1) && exit 0\n'
              f'case "$out" in *{shlex.quote(CERT_VERIFICATION_FAILED)}*)\n'
              f'  echo "alive, but the served certificate fails verification (readiness fails until it is '
              f'renewed): $out"; exit 0 ;;\n'
              f'esac\n'
              f'echo "$out"; exit 1\n')
    return ["/bin/sh", "-c", script]


def _probe(command: list[str], period: int, failures: int, initial: int = 0) -> Obj:
    return {
        "exec": {"command": command},
        "initialDelaySeconds": initial, "periodSeconds": period, "timeoutSeconds": 5,
        "failureThreshold": failures, "successThreshold": 1,
    }


#: Ready = initialised, unsealed, active or standby.
READINESS_QUERY = ["standbyok=true"]
#: Alive = answers over TLS at all; a sealed or not-yet-joined node must not be restarted. The
#: codes are 200, not 204: `bao read` exits 2 ("No value found") on an empty 204 answer.
LIVENESS_QUERY = ["standbyok=true", "sealedcode=200", "uninitcode=200"]


def probes() -> Obj:
    """Restart only what a restart can fix (docs/runbook-certificate-rotation.md, "Expired
    server certificate"; proved by tests/e2e/test_fault_cert_expiry.py).

    Kubernetes probe semantics: a startup or liveness probe that fails ``failureThreshold``
    times in a row kills the container, and the pod's restartPolicy restarts it (backing off
    into CrashLoopBackOff); a failing readiness probe only removes the pod from its Services'
    endpoints, the kubelet keeps probing, and the pod is Ready again once it passes.

    All three run the same `sys/health` read over TLS verified with our CA. Readiness is
    strict: a certificate clients cannot verify means the pod serves nobody, so it goes
    NotReady, traffic stops and the alerts fire. Startup and liveness read one failure as
    alive: the server presented a certificate that fails verification. A restart cannot cure
    that (the new process reads the same Secret files; a renewed certificate is loaded without
    one, by tls_auto_reload), and since every pod mounts the one Secret, every pod fails at the
    same moment: with a strict liveness, an expired certificate restarts the whole cluster
    every minute, in a loop, while its Raft data and its cluster port (OpenBao's own
    certificates) are fine. A dead or hung server still fails liveness: the connection is
    refused, times out, or gets an error answer. The price: while the certificate fails
    verification, liveness proves the TLS handshake only, not the HTTP handler behind it.

    No `-tls-skip-verify` (the policy pack forbids it in probes, policies/tls.py): a server
    presenting a good certificate is still told from one presenting a bad one, so each probe
    says which it saw, and only the 127.0.0.1 listener inside the pod's own network namespace
    is ever asked.
    """
    return {
        "startupProbe": _probe(_alive_command(LIVENESS_QUERY), period=5, failures=60),
        "livenessProbe": _probe(_alive_command(LIVENESS_QUERY), period=10, failures=6),
        "readinessProbe": _probe(_health_command(READINESS_QUERY), period=5, failures=2),
    }


def container_security_context() -> Obj:
    """Pod Security "restricted": no privilege, no capabilities (no IPC_LOCK), read-only root."""
    return {"allowPrivilegeEscalation": False, "privileged": False, "readOnlyRootFilesystem": True,
            "runAsNonRoot": True, "runAsUser": RUN_AS_ID, "runAsGroup": RUN_AS_ID,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


def pod_security_context() -> Obj:
    return {"runAsNonRoot": True, "runAsUser": RUN_AS_ID, "runAsGroup": RUN_AS_ID, "fsGroup": RUN_AS_ID,
            "fsGroupChangePolicy": "OnRootMismatch", "seccompProfile": {"type": "RuntimeDefault"}}


def server_env(spec: ClusterSpec) -> list[Obj]:
    """Downward-API identity first (later entries expand it with $(VAR)), then static env."""
    dns_suffix = f"{spec.headless_service}.{spec.namespace}.svc"
    fixed = start_environment(spec)
    env: list[Obj] = [
        {"name": "BAO_K8S_POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "BAO_K8S_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
        {"name": "BAO_RAFT_NODE_ID", "value": "$(BAO_K8S_POD_NAME)"},
        {"name": "BAO_API_ADDR", "value": f"https://$(BAO_K8S_POD_NAME).{dns_suffix}:{API_PORT}"},
        {"name": "BAO_CLUSTER_ADDR", "value": f"https://$(BAO_K8S_POD_NAME).{dns_suffix}:{CLUSTER_PORT}"},
        # For `kubectl exec ... bao status` and the probes: always verify with our CA.
        {"name": "BAO_ADDR", "value": f"https://127.0.0.1:{API_PORT}"},
        {"name": "BAO_CACERT", "value": PATHS.ca_cert},
        {"name": "HOME", "value": "/tmp"},
    ]
    env += [{"name": k, "value": v} for k, v in fixed.items()]
    return env


def volume_mounts(spec: ClusterSpec) -> list[Obj]:
    mounts = [
        {"name": "config", "mountPath": PATHS.config_dir, "readOnly": True},
        {"name": "tls", "mountPath": PATHS.tls_dir, "readOnly": True},
        {"name": "unseal", "mountPath": PATHS.unseal_dir, "readOnly": True},
        {"name": "data", "mountPath": PATHS.data_dir},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if spec.init_mounted:
        mounts.append({"name": "init", "mountPath": PATHS.init_dir, "readOnly": True})
    if spec.audit.file:
        mounts.append({"name": "audit", "mountPath": PATHS.audit_dir})
    return mounts


def volumes(spec: ClusterSpec, tls_secret: str, unseal_secret: str, init_secret: Optional[str]) -> list[Obj]:
    """Secrets are group-readable only (0440 with fsGroup): the server reads them, nobody else."""
    vols: list[Obj] = [
        {"name": "config", "configMap": {"name": config_map_name(spec), "defaultMode": 0o444}},
        {"name": "tls", "secret": {"secretName": tls_secret, "defaultMode": 0o440}},
        {"name": "unseal", "secret": {"secretName": unseal_secret, "defaultMode": 0o440}},
        {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
    ]
    if init_secret is not None and spec.init_mounted:
        vols.append({"name": "init", "secret": {"secretName": init_secret, "defaultMode": 0o440}})
    return vols


def affinity(spec: ClusterSpec) -> Obj:
    """One pod per host: required in production, preferred elsewhere (single-node dev clusters)."""
    term = {"labelSelector": {"matchLabels": dict(spec.selector_labels)}, "topologyKey": spec.topology.host_key}
    anti = ({"requiredDuringSchedulingIgnoredDuringExecution": [term]} if spec.production
            else {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100, "podAffinityTerm": term}]})
    result: Obj = {"podAntiAffinity": anti}
    if spec.topology.zones:
        result["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": spec.topology.zone_key, "operator": "In",
                                   "values": list(spec.topology.zones)}]}]}}
    return result


def topology_spread(spec: ClusterSpec) -> list[Obj]:
    return [{"maxSkew": spec.topology.max_skew, "topologyKey": spec.topology.zone_key,
             "whenUnsatisfiable": "DoNotSchedule" if spec.production else "ScheduleAnyway",
             "labelSelector": {"matchLabels": dict(spec.selector_labels)}}]


def _pvc(spec: ClusterSpec, name: str, size: str) -> Obj:
    claim: Obj = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if spec.storage.class_name:
        claim["storageClassName"] = spec.storage.class_name
    return {"metadata": {"name": name, "labels": dict(spec.selector_labels)}, "spec": claim}


def server_container(spec: ClusterSpec) -> Obj:
    r = spec.resources
    return {
        "name": "openbao",
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["/bin/sh", PATHS.start_script],
        "ports": [{"name": "https", "containerPort": API_PORT, "protocol": "TCP"},
                  {"name": "cluster", "containerPort": CLUSTER_PORT, "protocol": "TCP"}],
        "env": server_env(spec),
        "volumeMounts": volume_mounts(spec),
        "securityContext": container_security_context(),
        "resources": {"requests": {"cpu": r.cpu_request, "memory": r.memory_request},
                      "limits": {"cpu": r.cpu_limit, "memory": r.memory_limit}},
        **probes(),
    }


def stateful_set(spec: ClusterSpec, files: dict[str, str], tls_secret: str, unseal_secret: str,
                 init_secret: Optional[str]) -> Obj:
    """The HA StatefulSet: Parallel start (peers must answer the bootstrap gate), OnDelete updates."""
    claims = [_pvc(spec, "data", spec.storage.data_size)]
    if spec.audit.file:
        claims.append(_pvc(spec, "audit", spec.storage.audit_size))
    labels = dict(spec.common_labels)
    sts: Obj = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": metadata(spec, spec.name, annotations={**ORPHAN_ON_DELETE, **waiver_annotations(
            [WAIVER_SA_TOKEN, *image_waivers(spec)])}),
        "spec": {
            "serviceName": spec.headless_service,
            "replicas": spec.replicas,
            "podManagementPolicy": "Parallel",
            "updateStrategy": {"type": "OnDelete"},
            "selector": {"matchLabels": dict(spec.selector_labels)},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": labels, "annotations": {CONFIG_HASH_ANNOTATION: config_hash(files)}},
                "spec": {
                    "serviceAccountName": server_service_account(spec),
                    "automountServiceAccountToken": True,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": pod_security_context(),
                    "affinity": affinity(spec),
                    "topologySpreadConstraints": topology_spread(spec),
                    "containers": [server_container(spec)],
                    "volumes": volumes(spec, tls_secret, unseal_secret, init_secret),
                },
            },
            "volumeClaimTemplates": claims,
        },
    }
    if spec.production:  # object metadata only: the selector and pod labels stay as they are
        sts["metadata"]["labels"][PRODUCTION_LABEL] = "true"
    return sts


def max_unavailable(replicas: int) -> int:
    """Voluntary disruptions may take at most this many pods and keep a Raft majority."""
    return (replicas - 1) // 2


def pod_disruption_budget(spec: ClusterSpec) -> Optional[Obj]:
    """None for a single replica: a PDB there could only block every node drain."""
    if spec.replicas < 3:
        return None
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": metadata(spec, spec.name),
            "spec": {"maxUnavailable": max_unavailable(spec.replicas),
                     "selector": {"matchLabels": dict(spec.selector_labels)}}}

