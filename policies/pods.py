"""Pod hardening for every workload kind, containers and init containers alike.

OpenBao 2.x no longer needs mlock (no IPC_LOCK), so its pods can meet Pod Security
"restricted"; so can the backup job. On top of restricted: a read-only root filesystem,
no host access, requests and limits (a noisy neighbour must not starve Raft heartbeats),
pinned images (what was tested is what runs) and Secrets as files, never environment
variables (which leak into crash dumps, /proc and child processes).
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

from ._k8s import (
    WORKLOAD_KINDS, Container, K8sObject, PodTemplate, as_list, as_str_list, containers, fmt, get_path, parse_image,
    pod_template,
)
from ._rules import Config, resource_rule

ALLOWED_ADDED_CAPABILITIES = ("NET_BIND_SERVICE",)
SECCOMP_TYPES = ("RuntimeDefault", "Localhost")


def _pods(obj: K8sObject) -> Iterator[tuple[PodTemplate, Container]]:
    """(pod, container) for every container of a workload."""
    pod = pod_template(obj)
    if pod is not None:
        for c in containers(pod):
            yield pod, c


def _effective(pod: PodTemplate, c: Container, key: str) -> Any:
    """A securityContext field as the kubelet applies it: container over pod."""
    if key in c.security_context:
        return c.security_context[key]
    return get_path(pod.spec, "securityContext", key)


def check_restricted(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Pod Security Standard "restricted", per container."""
    for pod, c in _pods(obj):
        sc = c.security_context
        field = f"{c.path}.securityContext"
        if _effective(pod, c, "runAsNonRoot") is not True:
            yield (f"{obj.ref}: {field}.runAsNonRoot is {fmt(_effective(pod, c, 'runAsNonRoot'))} (container or pod). "
                   f"Fix: set runAsNonRoot: true (and a non-zero runAsUser).")
        if _effective(pod, c, "runAsUser") == 0:
            yield f"{obj.ref}: {field}.runAsUser is 0 (root). Fix: run as a non-zero UID, e.g. 100."
        if sc.get("privileged") is True:
            yield f"{obj.ref}: {field}.privileged is true. Fix: remove privileged."
        if sc.get("allowPrivilegeEscalation") is not False:
            yield (f"{obj.ref}: {field}.allowPrivilegeEscalation is {fmt(sc.get('allowPrivilegeEscalation'))}; "
                   f"setuid binaries could gain privileges. Fix: set allowPrivilegeEscalation: false.")
        caps = sc.get("capabilities") if isinstance(sc.get("capabilities"), Mapping) else {}
        if "ALL" not in as_str_list(caps.get("drop")):
            yield (f"{obj.ref}: {field}.capabilities.drop is {fmt(caps.get('drop'))}. "
                   f"Fix: set capabilities.drop: [ALL].")
        extra = [cap for cap in as_str_list(caps.get("add")) if cap not in ALLOWED_ADDED_CAPABILITIES]
        if extra:
            yield (f"{obj.ref}: {field}.capabilities.add is {fmt(extra)}; only NET_BIND_SERVICE may be added "
                   f"(OpenBao 2.x needs no IPC_LOCK). Fix: remove them.")
        seccomp = _effective(pod, c, "seccompProfile")
        seccomp_type = seccomp.get("type") if isinstance(seccomp, Mapping) else None
        if seccomp_type not in SECCOMP_TYPES:
            yield (f"{obj.ref}: {field}.seccompProfile.type is {fmt(seccomp_type)} (container or pod). "
                   f"Fix: set seccompProfile: {{type: RuntimeDefault}} on the pod.")


def check_read_only_root(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Containers cannot write to their image (no tampering, no dropped tools)."""
    for _, c in _pods(obj):
        if c.security_context.get("readOnlyRootFilesystem") is not True:
            yield (f"{obj.ref}: {c.path}.securityContext.readOnlyRootFilesystem is "
                   f"{fmt(c.security_context.get('readOnlyRootFilesystem'))}. Fix: set it to true and mount an "
                   f"emptyDir where the process must write (e.g. /tmp).")


def check_host_access(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """No hostPath volumes, host namespaces or host ports."""
    pod = pod_template(obj)
    if pod is None:
        return
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if pod.spec.get(key) is True:
            yield f"{obj.ref}: {pod.path}.{key} is true, sharing the node's namespace. Fix: remove {key}."
    for volume in as_list(pod.spec.get("volumes")):
        if isinstance(volume, Mapping) and volume.get("hostPath") is not None:
            yield (f"{obj.ref}: {pod.path}.volumes[{volume.get('name')}] is a hostPath volume. "
                   f"Fix: use a PersistentVolumeClaim, Secret, ConfigMap or emptyDir.")
    for c in containers(pod):
        for p in as_list(c.body.get("ports")):
            if get_path(p, "hostPort"):
                yield f"{obj.ref}: {c.path}.ports sets hostPort {fmt(get_path(p, 'hostPort'))}. Fix: use a Service."


def check_resources(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Every container requests and limits cpu and memory."""
    for _, c in _pods(obj):
        resources = c.body.get("resources") if isinstance(c.body.get("resources"), Mapping) else {}
        missing = [f"{section}.{res}" for section in ("requests", "limits") for res in ("cpu", "memory")
                   if get_path(resources, section, res) in (None, "")]
        if missing:
            yield (f"{obj.ref}: {c.path}.resources lacks {', '.join(missing)}. "
                   f"Fix: set cpu and memory requests and limits.")


IMAGE_CONFIG = {
    "requireDigest": {
        "type": "boolean", "default": False,
        "description": "Require every image to be pinned by @sha256 digest (not only a version tag).",
    },
}


def _image_problem(image: Optional[str], require_digest: bool) -> Optional[str]:
    """Why an image reference is not pinned, or None."""
    if not image:
        return "missing"
    _, tag, digest = parse_image(image)
    if require_digest and not digest:
        return "not pinned by @sha256 digest, which requireDigest demands"
    if digest:
        return None
    if tag is None:
        return "untagged, which means :latest"
    if tag == "latest":
        return "the mutable tag latest"
    return None


def check_image_pinned(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Images name a fixed version (and a digest when required)."""
    for _, c in _pods(obj):
        problem = _image_problem(c.image, cfg["requireDigest"])
        if problem:
            yield (f"{obj.ref}: {c.path}.image is {fmt(c.image)}: {problem}. Fix: pin a version tag"
                   f"{' and' if cfg['requireDigest'] else ', ideally with'} @sha256:<digest>.")


def check_secrets_as_files(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Secrets reach containers as mounted files, not environment variables."""
    for _, c in _pods(obj):
        for env in as_list(c.body.get("env")):
            ref = get_path(env, "valueFrom", "secretKeyRef")
            if ref is not None:
                yield (f"{obj.ref}: {c.path}.env[{get_path(env, 'name')}] reads Secret "
                       f"{fmt(get_path(ref, 'name'))} into the environment. Fix: mount the Secret as a "
                       f"read-only volume and point the process at the file.")
        for env_from in as_list(c.body.get("envFrom")):
            ref = get_path(env_from, "secretRef")
            if ref is not None:
                yield (f"{obj.ref}: {c.path}.envFrom loads Secret {fmt(get_path(ref, 'name'))} into the "
                       f"environment. Fix: mount it as a read-only volume instead.")


POLICIES = [
    resource_rule(
        "pod-security-restricted",
        "Pods meet Pod Security \"restricted\": runAsNonRoot, allowPrivilegeEscalation false, capabilities "
        "drop ALL (add at most NET_BIND_SERVICE), seccomp RuntimeDefault or Localhost, not privileged.",
        "high", WORKLOAD_KINDS, check_restricted),
    resource_rule(
        "pod-readonly-root-filesystem",
        "Every container has readOnlyRootFilesystem: true.",
        "medium", WORKLOAD_KINDS, check_read_only_root),
    resource_rule(
        "pod-no-host-access",
        "No hostPath volumes, hostNetwork, hostPID, hostIPC or hostPort.",
        "high", WORKLOAD_KINDS, check_host_access),
    resource_rule(
        "pod-resource-limits",
        "Every container sets cpu and memory requests and limits.",
        "medium", WORKLOAD_KINDS, check_resources),
    resource_rule(
        "pod-image-pinned",
        "Images are pinned: a tag that is not latest (none means latest), or a digest; digest required "
        "when requireDigest is set.",
        "medium", WORKLOAD_KINDS, check_image_pinned, IMAGE_CONFIG),
    resource_rule(
        "pod-secrets-as-files",
        "No Secret in the environment (env valueFrom.secretKeyRef, envFrom secretRef): mount Secrets as files.",
        "high", WORKLOAD_KINDS, check_secrets_as_files),
]
