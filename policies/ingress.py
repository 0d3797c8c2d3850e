"""The edge: verified TLS from the ingress to OpenBao, and no raw nginx config.

ingress-nginx treats any ``proxy-ssl-verify`` value other than "on" as off, and without
``backend-protocol: HTTPS`` it speaks plaintext to a TLS port; both fail open or fail
silently, so the OpenBao Ingress must carry the whole set. ``*-snippet`` annotations inject
raw nginx config (CVE-2021-25742, CVE-2025-1974 "IngressNightmare"), so none are allowed,
and other nginx annotations come from an allow-list. On the Gateway API the same guarantee
is a BackendTLSPolicy for every OpenBao backend of an HTTPRoute.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional, Sequence

from ._k8s import (
    NAME_LABEL,
    OPENBAO,
    OPENBAO_CLUSTER_PORT,
    K8sObject,
    as_int,
    as_list,
    fmt,
    get_path,
    is_openbao_backend,
    is_openbao_server,
    objects_of_kind,
    pod_template,
    selector_matches,
)
from ._rules import Config, resource_rule, stack_rule

NGINX = "nginx.ingress.kubernetes.io/"


def _backends(obj: K8sObject) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(field path, service backend) of every backend of an Ingress."""
    default = get_path(obj.spec, "defaultBackend", "service")
    if isinstance(default, Mapping):
        yield "spec.defaultBackend.service", default
    for i, rule in enumerate(as_list(obj.spec.get("rules"))):
        for j, path in enumerate(as_list(get_path(rule, "http", "paths"))):
            service = get_path(path, "backend", "service")
            if isinstance(service, Mapping):
                yield f"spec.rules[{i}].http.paths[{j}].backend.service", service


def _is_openbao_ingress(obj: K8sObject) -> bool:
    """Labelled for OpenBao, or a backend on the API port or an OpenBao-named Service."""
    if obj.labels.get(NAME_LABEL) == OPENBAO:
        return True
    return any(is_openbao_backend(s.get("name"), get_path(s, "port", "number")) for _, s in _backends(obj))


def check_ingress_backend_tls(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """An OpenBao Ingress terminates TLS and re-encrypts to OpenBao with verification."""
    if not _is_openbao_ingress(obj):
        return
    ann = obj.annotations
    if not as_list(obj.spec.get("tls")):
        yield (f"{obj.ref}: spec.tls is empty, so clients reach OpenBao over plaintext HTTP. "
               f"Fix: add spec.tls with the host and a TLS Secret (or a cert-manager issuer annotation).")
    if str(ann.get(NGINX + "ssl-redirect", "")).lower() == "false":
        yield (f"{obj.ref}: annotation {NGINX}ssl-redirect is \"false\", so HTTP is served without redirect. "
               f"Fix: remove the annotation (the default redirects to HTTPS).")
    if str(ann.get(NGINX + "backend-protocol", "HTTP")).upper() != "HTTPS":
        protocol = ann.get(NGINX + "backend-protocol", "HTTP (default)")
        yield (f"{obj.ref}: annotation {NGINX}backend-protocol is {fmt(protocol)}; "
               f"nginx would speak plaintext to OpenBao's TLS listener. Fix: set it to \"HTTPS\".")
    if ann.get(NGINX + "proxy-ssl-verify") != "on":
        yield (f"{obj.ref}: annotation {NGINX}proxy-ssl-verify is {fmt(ann.get(NGINX + 'proxy-ssl-verify'))}; "
               f"any value but exactly \"on\" means the backend certificate is not verified. Fix: set it to \"on\".")
    secret = ann.get(NGINX + "proxy-ssl-secret")
    ns, _, name = secret.partition("/") if isinstance(secret, str) else ("", "", "")
    if ns != obj.namespace or not name:
        yield (f"{obj.ref}: annotation {NGINX}proxy-ssl-secret is {fmt(secret)}; it must be "
               f"\"{obj.namespace}/<secret with ca.crt>\" in the Ingress's own namespace. "
               f"Fix: set it to \"{obj.namespace}/<name>-ca\".")
    ssl_name = ann.get(NGINX + "proxy-ssl-name")
    if not isinstance(ssl_name, str) or not ssl_name.strip():
        yield (f"{obj.ref}: annotation {NGINX}proxy-ssl-name is {fmt(ssl_name)}; nginx cannot check the "
               f"backend certificate's name. Fix: set it to a SAN of the server cert, e.g. <name>-active.<ns>.svc, "
               f"and {NGINX}proxy-ssl-server-name: \"on\".")


def check_no_snippets(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """No annotation injects raw controller configuration."""
    for key in obj.annotations:
        if key.rsplit("/", 1)[-1].endswith("snippet"):
            yield (f"{obj.ref}: annotation {key} injects raw nginx configuration (and with it a path to "
                   f"the controller's credentials). Fix: remove it; use a dedicated annotation or the Gateway API.")


ANNOTATION_CONFIG = {
    "allowedNginxAnnotations": {
        "type": "array", "items": {"type": "string"},
        "default": [
            "backend-protocol", "proxy-ssl-secret", "proxy-ssl-verify", "proxy-ssl-verify-depth",
            "proxy-ssl-name", "proxy-ssl-server-name", "proxy-ssl-protocols", "ssl-redirect",
            "force-ssl-redirect", "proxy-body-size", "proxy-connect-timeout", "proxy-read-timeout",
            "proxy-send-timeout", "proxy-next-upstream", "proxy-next-upstream-tries", "limit-rps",
            "limit-rpm", "limit-connections", "whitelist-source-range", "denylist-source-range",
        ],
        "description": "nginx.ingress.kubernetes.io/<name> annotations an Ingress may use (names without the prefix).",
    },
}


def check_annotation_allowlist(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Only allow-listed nginx annotations (each one is controller behaviour to review)."""
    allowed = set(cfg["allowedNginxAnnotations"])
    for key in obj.annotations:
        if key.startswith(NGINX) and key[len(NGINX):] not in allowed and not key.endswith("snippet"):
            yield (f"{obj.ref}: annotation {key} is not in the allow-list. Fix: remove it, or add "
                   f"\"{key[len(NGINX):]}\" to allowedNginxAnnotations in the policy config after review.")


# --------------------------------------------------------------------------------------
# Gateway API
# --------------------------------------------------------------------------------------


def _openbao_services(objects: Sequence[K8sObject]) -> set[tuple[str, str]]:
    """(namespace, name) of Services that front the OpenBao server pods."""
    pods = [(o.namespace, pod_template(o)) for o in objects if is_openbao_server(o)]
    found = set()
    for svc in objects_of_kind(objects, "Service"):
        selector = svc.spec.get("selector")
        if svc.labels.get(NAME_LABEL) == OPENBAO or any(
            ns == svc.namespace and pod is not None and isinstance(selector, Mapping) and selector
            and selector_matches({"matchLabels": selector}, pod.labels, missing_matches=False)
            for ns, pod in pods
        ):
            found.add((svc.namespace, svc.object_name))
    return found


def _tls_policies_for(objects: Sequence[K8sObject], namespace: str, service: str) -> list[K8sObject]:
    """BackendTLSPolicies in ``namespace`` whose targetRefs name the Service."""
    out = []
    for policy in objects_of_kind(objects, "BackendTLSPolicy"):
        if policy.namespace != namespace:
            continue
        refs = as_list(policy.spec.get("targetRefs")) + as_list(policy.spec.get("targetRef"))
        if any(get_path(r, "kind") in (None, "Service") and get_path(r, "name") == service for r in refs):
            out.append(policy)
    return out


def _tls_policy_problem(policy: K8sObject) -> Optional[str]:
    """What a BackendTLSPolicy lacks to verify the backend (a CA and a hostname), or None."""
    validation = policy.spec.get("validation")
    validation = validation if isinstance(validation, Mapping) else {}
    if not as_list(validation.get("caCertificateRefs")) and not validation.get("wellKnownCACertificates"):
        return "spec.validation names no CA (caCertificateRefs)"
    hostname = validation.get("hostname")
    if not isinstance(hostname, str) or not hostname.strip():
        return "spec.validation.hostname is empty"
    return None


def check_gateway_backend_tls(objects: Sequence[K8sObject], cfg: Config) -> Iterator[tuple[K8sObject, str]]:
    """Every HTTPRoute backend that is OpenBao has a complete BackendTLSPolicy."""
    services = _openbao_services(objects)
    for route in objects_of_kind(objects, "HTTPRoute", "GRPCRoute"):
        for i, rule in enumerate(as_list(route.spec.get("rules"))):
            for j, ref in enumerate(as_list(get_path(rule, "backendRefs"))):
                if get_path(ref, "kind") not in (None, "Service") or get_path(ref, "group") not in (None, ""):
                    continue
                name, ns = get_path(ref, "name"), get_path(ref, "namespace") or route.namespace
                if (ns, name) not in services and not is_openbao_backend(name, get_path(ref, "port")):
                    continue
                field = f"spec.rules[{i}].backendRefs[{j}]"
                policies = _tls_policies_for(objects, ns, name)
                if not policies:
                    yield route, (f"{route.ref}: {field} sends traffic to OpenBao Service {ns}/{name} with no "
                                  f"BackendTLSPolicy, so the gateway does not verify (or speak) TLS to it. Fix: add a "
                                  f"BackendTLSPolicy in {ns} with targetRefs [{{kind: Service, name: {name}}}], "
                                  f"validation.caCertificateRefs to the CA ConfigMap and validation.hostname = a SAN.")
                for policy in policies:
                    problem = _tls_policy_problem(policy)
                    if problem:
                        yield policy, (f"{policy.ref}: {problem}, so {route.ref} {field} to Service {name} is not "
                                       f"verified. Fix: set validation.caCertificateRefs and validation.hostname.")


#: Service types that publish a port outside the cluster network.
EXTERNAL_SERVICE_TYPES = ("NodePort", "LoadBalancer")


def _carries_cluster_port(port: Mapping[str, Any], cluster_port: int) -> bool:
    target = port.get("targetPort")
    return as_int(port.get("port")) == cluster_port or as_int(target) == cluster_port or target == "cluster"


def check_service_exposure(objects: Sequence[K8sObject], cfg: Config) -> Iterator[tuple[K8sObject, str]]:
    """A Service in front of the OpenBao pods stays inside the cluster (the edge publishes the
    API, with TLS to the backend), and only a headless peers Service carries the cluster port:
    8201 takes request forwarding and Raft from anything that can reach it, with OpenBao's own
    cluster certificates, so no load balancer or node port may ever publish it."""
    cluster_port = cfg["clusterPort"]
    services = _openbao_services(objects)
    for svc in objects_of_kind(objects, "Service"):
        if (svc.namespace, svc.object_name) not in services:
            continue
        kind = svc.spec.get("type") or "ClusterIP"
        if kind in EXTERNAL_SERVICE_TYPES:
            yield svc, (f"{svc.ref}: spec.type is {kind}, which publishes the OpenBao pods outside the cluster "
                        f"without the edge (no TLS policy, no rate limits, no NetworkPolicy source). Fix: keep "
                        f"type ClusterIP and publish the API with ingress.mode (ingress or gateway).")
        for field in ("externalIPs", "loadBalancerSourceRanges"):
            if as_list(svc.spec.get(field)):
                yield svc, (f"{svc.ref}: spec.{field} is set on a Service in front of the OpenBao pods. Fix: remove "
                            f"it and publish the API with ingress.mode.")
        headless = svc.spec.get("clusterIP") == "None"
        for i, port in enumerate(as_list(svc.spec.get("ports"))):
            if isinstance(port, Mapping) and _carries_cluster_port(port, cluster_port) and \
                    (not headless or kind in EXTERNAL_SERVICE_TYPES):
                yield svc, (f"{svc.ref}: spec.ports[{i}] carries the cluster port {cluster_port} (Raft and request "
                            f"forwarding) on a Service that is not the headless peers Service. Fix: remove the "
                            f"port; peers reach each other through the headless <name>-internal Service.")


POLICIES = [
    resource_rule(
        "openbao-ingress-backend-tls",
        "An Ingress for OpenBao has spec.tls, no ssl-redirect \"false\", backend-protocol HTTPS, "
        "proxy-ssl-verify exactly \"on\", proxy-ssl-secret \"<own ns>/<name>\" and proxy-ssl-name.",
        "high", ("Ingress",), check_ingress_backend_tls),
    stack_rule(
        "openbao-service-exposure",
        "A Service in front of the OpenBao pods is ClusterIP with no externalIPs, and only the headless "
        "peers Service carries the cluster port 8201: the API leaves the cluster through the edge only.",
        "critical", check_service_exposure,
        config={"clusterPort": {"type": "integer", "default": OPENBAO_CLUSTER_PORT, "description": "OpenBao cluster (Raft) port."}}),
    stack_rule(
        "openbao-gateway-backend-tls",
        "Every Gateway API route backend that is OpenBao has a BackendTLSPolicy with a CA and hostname.",
        "high", check_gateway_backend_tls),
    resource_rule(
        "ingress-no-snippet-annotations",
        "No *-snippet annotation (configuration-snippet, server-snippet, auth-snippet, ...): "
        "they inject raw nginx config.",
        "high", ("Ingress",), check_no_snippets),
    resource_rule(
        "ingress-nginx-annotation-allowlist",
        "Ingresses use only allow-listed nginx.ingress.kubernetes.io/* annotations (allowedNginxAnnotations).",
        "medium", ("Ingress",), check_annotation_allowlist, ANNOTATION_CONFIG),
]
