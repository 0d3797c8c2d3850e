"""The edge: publish the OpenBao API with TLS verified end to end.

Two modes (``settings.ingress.mode``; ``none`` publishes nothing):

**nginx** (ingress-nginx, retired upstream in March 2026 but still what most clusters
run): an Ingress to the *active* Service on 8200 over HTTPS, with the backend verified:
``backend-protocol: HTTPS``, ``proxy-ssl-verify: "on"`` (any other value silently means
off), ``proxy-ssl-secret`` pointing at a Secret holding *only* our CA as ``ca.crt``,
``proxy-ssl-name`` = the active Service's DNS name (a SAN of the server cert) sent as SNI
(``proxy-ssl-server-name: "on"``), and ``proxy-ssl-protocols`` from
``settings.tls_min_version``. The CA-only Secret matters: ingress-nginx presents
``tls.crt``/``tls.key`` of that Secret as a *client* certificate when present, so
pointing it at the server's own ``kubernetes.io/tls`` Secret would copy the server's
private key into every controller. Public TLS comes from cert-manager (issuer
annotation, Secret ``<name>-public-tls``) or an existing Secret; external-dns is an
optional hostname annotation. The protocols offered to *clients* are controller-wide
(ConfigMap key ``ssl-protocols``, default TLSv1.2 TLSv1.3): ingress-nginx has no
per-Ingress annotation for them. No ``*-snippet`` annotation is ever emitted.

**gateway** (Gateway API, the forward path), targeting **Gateway API v1.4** (standard
channel), where HTTPRoute and BackendTLSPolicy are both ``gateway.networking.k8s.io/v1``:
an HTTPRoute attached to ``settings.ingress.gateway_name`` in
``settings.ingress.gateway_namespace`` sending ``settings.ingress.host`` to the active
Service on 8200, and a BackendTLSPolicy on that Service validating it with our CA
(``caCertificateRefs`` -> ConfigMap ``<name>-ca`` holding only the public ``ca.crt``)
and ``hostname`` = the active Service's DNS name. Requirements on the cluster side:

* the Gateway's listener must admit routes from the OpenBao namespace, e.g.
  ``allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels:
  {kubernetes.io/metadata.name: <namespace>}}}}`` (or ``from: All``); without it the
  route is not Accepted;
* the Gateway terminates public TLS (its HTTPS listener's ``certificateRefs``, e.g. via
  cert-manager's Gateway support), so ``ingress.tlsSecretName``/``certManagerIssuer``
  configure nothing here; external-dns publishes ``spec.hostnames`` through its
  ``gateway-httproute`` source, so no annotation is needed;
* the implementation must support BackendTLSPolicy (v1, standard channel CRDs v1.4+).

Pure functions return the objects as plain dicts; the component only creates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Optional

import pulumi
import pulumi_kubernetes as k8s

from components.cluster_manifests import metadata
from components.lifecycle import SKIP_AWAIT
from components.server_config import API_PORT
from components.settings import Settings

GATEWAY_GROUP = "gateway.networking.k8s.io"
NGINX = "nginx.ingress.kubernetes.io/"
CA_KEY = "ca.crt"
_TLS_PROTOCOLS = {"tls12": "TLSv1.2 TLSv1.3", "tls13": "TLSv1.3"}


def public_tls_secret_name(settings: Settings) -> str:
    """The Secret holding the public certificate: the given one, or cert-manager's."""
    return settings.ingress.tls_secret_name or f"{settings.name}-public-tls"


def backend_ca_name(settings: Settings) -> str:
    """Name of the CA-only Secret (nginx; ClusterPki creates it) or ConfigMap (Gateway API)."""
    return settings.ca_bundle_name


def nginx_annotations(settings: Settings) -> dict[str, str]:
    """Exactly the annotations the Ingress needs (backend TLS, public TLS, DNS)."""
    ing = settings.ingress
    annotations = {
        f"{NGINX}backend-protocol": "HTTPS",
        f"{NGINX}proxy-ssl-verify": "on",
        f"{NGINX}proxy-ssl-secret": f"{settings.namespace}/{backend_ca_name(settings)}",
        f"{NGINX}proxy-ssl-name": settings.active_dns_name,
        f"{NGINX}proxy-ssl-server-name": "on",
        f"{NGINX}proxy-ssl-protocols": _TLS_PROTOCOLS[settings.tls_min_version],
    }
    if ing.cert_manager_issuer:
        kind = "cluster-issuer" if ing.cert_manager_issuer_kind == "ClusterIssuer" else "issuer"
        annotations[f"cert-manager.io/{kind}"] = ing.cert_manager_issuer
    if ing.external_dns:
        annotations["external-dns.alpha.kubernetes.io/hostname"] = str(ing.host)
    return annotations


def nginx_ingress(settings: Settings) -> dict[str, Any]:
    """Ingress: the public host to the active Service's HTTPS port."""
    host = str(settings.ingress.host)
    backend = {"service": {"name": settings.active_service, "port": {"number": API_PORT}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(settings, settings.name, annotations={**nginx_annotations(settings), **SKIP_AWAIT}),
        "spec": {
            "ingressClassName": settings.ingress.class_name,
            "tls": [{"hosts": [host], "secretName": public_tls_secret_name(settings)}],
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
        },
    }


def backend_ca_configmap(settings: Settings, ca_cert_pem: pulumi.Input[str]) -> dict[str, Any]:
    """ConfigMap with only ``ca.crt``: what BackendTLSPolicy's caCertificateRefs reads."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(settings, backend_ca_name(settings)), "data": {CA_KEY: ca_cert_pem}}


def http_route(settings: Settings) -> dict[str, Any]:
    """HTTPRoute: the public host on the shared Gateway to the active Service."""
    ing = settings.ingress
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(settings, settings.name, annotations=dict(SKIP_AWAIT)),
        "spec": {
            "parentRefs": [{"group": GATEWAY_GROUP, "kind": "Gateway", "name": ing.gateway_name,
                            "namespace": ing.gateway_namespace}],
            "hostnames": [str(ing.host)],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"group": "", "kind": "Service", "name": settings.active_service, "port": API_PORT}],
            }],
        },
    }


def backend_tls_policy(settings: Settings) -> dict[str, Any]:
    """BackendTLSPolicy: the Gateway must verify the active Service's cert with our CA."""
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "BackendTLSPolicy",
        "metadata": metadata(settings, settings.name, annotations=dict(SKIP_AWAIT)),
        "spec": {
            "targetRefs": [{"group": "", "kind": "Service", "name": settings.active_service}],
            "validation": {
                "caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": backend_ca_name(settings)}],
                "hostname": settings.active_dns_name,
            },
        },
    }


def edge_objects(settings: Settings, ca_cert_pem: pulumi.Input[str]) -> dict[str, dict[str, Any]]:
    """Every edge object for the stack's mode, keyed by role (used for child names)."""
    mode = settings.ingress.mode
    if mode == "nginx":
        return {"ingress": nginx_ingress(settings)}  # proxy-ssl-secret: ClusterPki's CA-only Secret
    if mode == "gateway":
        return {"backend-ca": backend_ca_configmap(settings, ca_cert_pem), "route": http_route(settings),
                "backend-tls": backend_tls_policy(settings)}
    return {}


def _create(name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """One pulumi_kubernetes resource from one plain object."""
    kind, meta = obj["kind"], obj["metadata"]
    builders: dict[str, Callable[[], pulumi.CustomResource]] = {
        "Ingress": lambda: k8s.networking.v1.Ingress(name, metadata=meta, spec=obj["spec"], opts=opts),
        "ConfigMap": lambda: k8s.core.v1.ConfigMap(name, metadata=meta, data=obj["data"], opts=opts),
    }
    if kind in builders:
        return builders[kind]()
    return k8s.apiextensions.CustomResource(name, api_version=obj["apiVersion"], kind=kind,
                                            metadata=meta, spec=obj["spec"], opts=opts)


@dataclass(frozen=True)
class EdgeArgs:
    """Inputs of OpenBaoEdge: the settings and our CA certificate (PEM, public)."""

    settings: Settings
    ca_cert_pem: pulumi.Input[str]


class OpenBaoEdge(pulumi.ComponentResource):
    """nginx Ingress or Gateway API route for the OpenBao API, backend TLS verified."""

    url: pulumi.Output[Optional[str]]
    """The public API address (https://host), or None when ingress.mode is none."""

    def __init__(self, name: str, args: EdgeArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("openbao:edge:OpenBaoEdge", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        for role, obj in edge_objects(args.settings, args.ca_cert_pem).items():
            _create(f"{name}-{role}", obj, child)
        host = args.settings.ingress.host if args.settings.ingress.mode != "none" else None
        self.url = pulumi.Output.from_input(f"https://{host}" if host else None)
        self.register_outputs({"url": self.url})
