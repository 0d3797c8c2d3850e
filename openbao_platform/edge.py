"""The edge: publish the OpenBao API with TLS verified end to end.

Two modes (``mode``; ``none`` publishes nothing):

**nginx** (ingress-nginx, retired upstream in March 2026 but still what most clusters
run): an Ingress to the *active* Service on 8200 over HTTPS, with the backend verified:
``backend-protocol: HTTPS``, ``proxy-ssl-verify: "on"`` (any other value silently means
off), ``proxy-ssl-secret`` pointing at a Secret holding *only* our CA as ``ca.crt``,
``proxy-ssl-name`` = the active Service's DNS name (a SAN of the server cert) sent as SNI
(``proxy-ssl-server-name: "on"``), and ``proxy-ssl-protocols`` from ``tls_min_version``.
The CA-only Secret matters: ingress-nginx presents
``tls.crt``/``tls.key`` of that Secret as a *client* certificate when present, so
pointing it at the server's own ``kubernetes.io/tls`` Secret would copy the server's
private key into every controller. Public TLS comes from cert-manager (issuer
annotation, Secret ``<name>-public-tls``) or an existing Secret; external-dns is an
optional hostname annotation. The protocols offered to *clients* are controller-wide
(ConfigMap key ``ssl-protocols``, default TLSv1.2 TLSv1.3): ingress-nginx has no
per-Ingress annotation for them. No ``*-snippet`` annotation is ever emitted.

**gateway** (Gateway API, the forward path), targeting **Gateway API v1.4** (standard
channel), where HTTPRoute and BackendTLSPolicy are both ``gateway.networking.k8s.io/v1``:
an HTTPRoute attached to ``gateway_name`` in ``gateway_namespace`` sending ``host`` to the
active Service on 8200, and a BackendTLSPolicy on that Service validating it with our CA
(``caCertificateRefs`` -> ConfigMap ``<name>-ca`` holding only the public ``ca.crt``)
and ``hostname`` = the active Service's DNS name. Requirements on the cluster side:

* the Gateway's listener must admit routes from the OpenBao namespace, e.g.
  ``allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels:
  {kubernetes.io/metadata.name: <namespace>}}}}`` (or ``from: All``); without it the
  route is not Accepted;
* the Gateway terminates public TLS (its HTTPS listener's ``certificateRefs``, e.g. via
  cert-manager's Gateway support), so ``tls_secret_name``/``cert_manager_issuer``
  configure nothing here; external-dns publishes ``spec.hostnames`` through its
  ``gateway-httproute`` source, so no annotation is needed;
* the implementation must support BackendTLSPolicy (v1, standard channel CRDs v1.4+).

The component takes only what the objects consume (``OpenBaoEdgeArgs``: the cluster's name
and namespace, from which the active Service ``<name>-active`` and the CA-only Secret
``<name>-ca`` of ClusterPki are named, and the publishing options), never the stack settings;
the args are validated with the stack config's ``ingress`` and ``tlsMinVersion`` rules into an
``EdgeSpec``. Pure functions take that spec and return the objects as plain dicts; the
component only creates them.
"""


from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from openbao_platform.cluster_manifests import metadata
from openbao_platform.lifecycle import SKIP_AWAIT
from openbao_platform.naming import NamedCluster
from openbao_platform.server_config import API_PORT
from openbao_platform.settings import ArgsCheck, IngressSettings, _parse_tls_min_version
from openbao_platform.tokens import token, with_previous_token

GATEWAY_GROUP = "gateway.networking.k8s.io"
NGINX = "nginx.ingress.kubernetes.io/"
CA_KEY = "ca.crt"
_TLS_PROTOCOLS = {"tls12": "TLSv1.2 TLSv1.3", "tls13": "TLSv1.3"}


class OpenBaoEdgeArgs(TypedDict, total=False):
    """Inputs of OpenBaoEdge: which cluster to publish, where, and how public TLS is provided."""

    name: Required[str]
    """Name of the OpenBao cluster: routes to Service ``<name>-active``, verified with CA-only Secret ``<name>-ca``."""
    namespace: Required[str]
    """Namespace of the cluster; the edge objects live there too."""
    mode: Required[str]
    """nginx (an Ingress), gateway (a Gateway API HTTPRoute + BackendTLSPolicy) or none (nothing)."""
    host: str
    """Public DNS name of the API, e.g. bao.example.com (required unless mode is none)."""
    ca_cert_pem: pulumi.Input[str]
    """Our CA certificate (PEM, public): the Gateway verifies the backend with it (required in gateway mode)."""
    tls_min_version: str
    """Lowest TLS version the proxy speaks to OpenBao: tls12 (default) or tls13."""
    class_name: str
    """nginx: the IngressClass. Default nginx."""
    tls_secret_name: str
    """nginx: an existing kubernetes.io/tls Secret with the public certificate (or set cert_manager_issuer)."""
    cert_manager_issuer: str
    """nginx: the cert-manager issuer that issues the public certificate into ``<name>-public-tls``."""
    cert_manager_issuer_kind: str
    """nginx: ClusterIssuer (default) or Issuer."""
    external_dns: bool
    """nginx: annotate the host for external-dns. Default false."""
    gateway_name: str
    """gateway: the Gateway the route attaches to. Default gateway."""
    gateway_namespace: str
    """gateway: the Gateway's namespace. Default gateway-system."""


@dataclass(frozen=True)
class EdgeSpec(NamedCluster):
    """Validated OpenBaoEdge args: what the pure builders below consume."""

    name: str
    namespace: str
    ingress: IngressSettings = field(default_factory=IngressSettings)
    tls_min_version: str = "tls12"


_INGRESS_KEYS = ("mode", "host", "class_name", "tls_secret_name", "cert_manager_issuer", "cert_manager_issuer_kind",
                 "external_dns", "gateway_name", "gateway_namespace")


def edge_spec(args: OpenBaoEdgeArgs) -> EdgeSpec:
    """The validated spec (the stack config's identity, ``ingress`` and ``tlsMinVersion`` rules), or ArgsError."""
    with ArgsCheck("OpenBaoEdge") as check:
        names = check.identity(args, "mode")
        ingress = check.section("ingress", {k: args.get(k) for k in _INGRESS_KEYS})
        tls_min = check.section("", {"tls_min_version": args.get("tls_min_version")}, _parse_tls_min_version)
        if ingress.mode == "gateway" and args.get("ca_cert_pem") is None:
            check.section("", {}, lambda r: r.fail(
                "caCertPem", None, "is required when mode is gateway (the BackendTLSPolicy verifies OpenBao with it)",
                "pass the CA certificate PEM, e.g. ClusterPki's ca_cert_pem"))
    return EdgeSpec(name=names.name, namespace=names.namespace, ingress=ingress, tls_min_version=tls_min)


def public_tls_secret_name(spec: EdgeSpec) -> str:
    """The Secret holding the public certificate: the given one, or cert-manager's."""
    return spec.ingress.tls_secret_name or f"{spec.name}-public-tls"


def backend_ca_name(spec: EdgeSpec) -> str:
    """Name of the CA-only Secret (nginx; ClusterPki creates it) or ConfigMap (Gateway API)."""
    return spec.ca_bundle_name


def nginx_annotations(spec: EdgeSpec) -> dict[str, str]:
    """Exactly the annotations the Ingress needs (backend TLS, public TLS, DNS)."""
    ing = spec.ingress
    annotations = {
        f"{NGINX}backend-protocol": "HTTPS",
        f"{NGINX}proxy-ssl-verify": "on",
        f"{NGINX}proxy-ssl-secret": f"{spec.namespace}/{backend_ca_name(spec)}",
        f"{NGINX}proxy-ssl-name": spec.active_dns_name,
        f"{NGINX}proxy-ssl-server-name": "on",
        f"{NGINX}proxy-ssl-protocols": _TLS_PROTOCOLS[spec.tls_min_version],
    }
    if ing.cert_manager_issuer:
        kind = "cluster-issuer" if ing.cert_manager_issuer_kind == "ClusterIssuer" else "issuer"
        annotations[f"cert-manager.io/{kind}"] = ing.cert_manager_issuer
    if ing.external_dns:
        annotations["external-dns.alpha.kubernetes.io/hostname"] = str(ing.host)
    return annotations


def nginx_ingress(spec: EdgeSpec) -> dict[str, Any]:
    """Ingress: the public host to the active Service's HTTPS port."""
    host = str(spec.ingress.host)
    backend = {"service": {"name": spec.active_service, "port": {"number": API_PORT}}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": metadata(spec, spec.name, annotations={**nginx_annotations(spec), **SKIP_AWAIT}),
        "spec": {
            "ingressClassName": spec.ingress.class_name,
            "tls": [{"hosts": [host], "secretName": public_tls_secret_name(spec)}],
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}],
        },
    }


def backend_ca_configmap(spec: EdgeSpec, ca_cert_pem: pulumi.Input[str]) -> dict[str, Any]:
    """ConfigMap with only ``ca.crt``: what BackendTLSPolicy's caCertificateRefs reads."""
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": metadata(spec, backend_ca_name(spec)), "data": {CA_KEY: ca_cert_pem}}


def http_route(spec: EdgeSpec) -> dict[str, Any]:
    """HTTPRoute: the public host on the shared Gateway to the active Service."""
    ing = spec.ingress
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "HTTPRoute",
        "metadata": metadata(spec, spec.name, annotations=dict(SKIP_AWAIT)),
        "spec": {
            "parentRefs": [{"group": GATEWAY_GROUP, "kind": "Gateway", "name": ing.gateway_name,
                            "namespace": ing.gateway_namespace}],
            "hostnames": [str(ing.host)],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"group": "", "kind": "Service", "name": spec.active_service, "port": API_PORT}],
            }],
        },
    }


def backend_tls_policy(spec: EdgeSpec) -> dict[str, Any]:
    """BackendTLSPolicy: the Gateway must verify the active Service's cert with our CA."""
    return {
        "apiVersion": f"{GATEWAY_GROUP}/v1",
        "kind": "BackendTLSPolicy",
        "metadata": metadata(spec, spec.name, annotations=dict(SKIP_AWAIT)),
        "spec": {
            "targetRefs": [{"group": "", "kind": "Service", "name": spec.active_service}],
            "validation": {
                "caCertificateRefs": [{"group": "", "kind": "ConfigMap", "name": backend_ca_name(spec)}],
                "hostname": spec.active_dns_name,
            },
        },
    }


def edge_objects(spec: EdgeSpec, ca_cert_pem: pulumi.Input[str]) -> dict[str, dict[str, Any]]:
    """Every edge object for the spec's mode, keyed by role (used for child names)."""
    mode = spec.ingress.mode
    if mode == "nginx":
        return {"ingress": nginx_ingress(spec)}  # proxy-ssl-secret: ClusterPki's CA-only Secret
    if mode == "gateway":
        return {"backend-ca": backend_ca_configmap(spec, ca_cert_pem), "route": http_route(spec),
                "backend-tls": backend_tls_policy(spec)}
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


class OpenBaoEdge(pulumi.ComponentResource):
    """nginx Ingress or Gateway API route for the OpenBao API, backend TLS verified."""

    url: pulumi.Output[Optional[str]]
    """The public API address (https://host), or None when mode is none."""

    def __init__(self, name: str, args: OpenBaoEdgeArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        spec = edge_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("OpenBaoEdge"), name, None, with_previous_token(opts, "openbao:edge:OpenBaoEdge"))
        child = pulumi.ResourceOptions(parent=self)
        for role, obj in edge_objects(spec, args.get("ca_cert_pem", "")).items():
            _create(f"{name}-{role}", obj, child)
        host = spec.ingress.host if spec.ingress.mode != "none" else None
        self.url = pulumi.Output.from_input(f"https://{host}" if host else None)
        self.register_outputs({"url": self.url})
