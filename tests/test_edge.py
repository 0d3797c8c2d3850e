"""The edge publishes the active Service with backend TLS verified, in both modes."""

from __future__ import annotations

import copy
from typing import Any, Mapping

import pytest
from cryptography import x509

from openbao_platform.edge import (
    EdgeSpec,
    OpenBaoEdge,
    backend_ca_name,
    edge_objects,
    edge_spec,
    nginx_annotations,
)
from openbao_platform.platform import edge_args
from openbao_platform.settings import parse_settings
from tests.schema.harness import run_component
from tests.support.program import ProgramRun, stack_config

CA = "-----BEGIN CERTIFICATE-----\nMIIBtest\n-----END CERTIFICATE-----\n"
NGINX = "nginx.ingress.kubernetes.io/"
BASE: dict[str, Any] = {"ingress": {"mode": "nginx", "host": "bao.example.com", "certManagerIssuer": "letsencrypt"}}


def settings(tls_min: str = "tls12", **ingress: Any) -> EdgeSpec:
    """The edge of a stack publishing bao.example.com, with ingress keys overridden (the platform's mapping)."""
    raw = copy.deepcopy(BASE)
    raw["ingress"].update(ingress)
    return edge_spec(edge_args(parse_settings({**raw, "tlsMinVersion": tls_min}, "prod"), CA))


def objects(s: EdgeSpec) -> dict[str, dict[str, Any]]:
    return {o["kind"]: o for o in edge_objects(s, CA).values()}


# --- nginx ----------------------------------------------------------------------------

def test_nginx_annotations_are_exactly_the_needed_ones() -> None:
    assert nginx_annotations(settings(externalDns=True)) == {
        f"{NGINX}backend-protocol": "HTTPS",
        f"{NGINX}proxy-ssl-verify": "on",
        f"{NGINX}proxy-ssl-secret": "openbao/openbao-ca",
        f"{NGINX}proxy-ssl-name": "openbao-active.openbao.svc",
        f"{NGINX}proxy-ssl-server-name": "on",
        f"{NGINX}proxy-ssl-protocols": "TLSv1.2 TLSv1.3",
        "cert-manager.io/cluster-issuer": "letsencrypt",
        "external-dns.alpha.kubernetes.io/hostname": "bao.example.com",
    }


@pytest.mark.parametrize("ingress", [
    {"externalDns": True},
    {"certManagerIssuer": None, "tlsSecretName": "bao-public", "tls_min": "tls13"},
    {"certManagerIssuerKind": "Issuer"},
])
def test_no_snippet_and_verification_always_on(ingress: dict[str, Any]) -> None:
    annotations = objects(settings(**ingress))["Ingress"]["metadata"]["annotations"]
    assert not [k for k in annotations if "snippet" in k]
    assert annotations[f"{NGINX}proxy-ssl-verify"] == "on" and annotations[f"{NGINX}backend-protocol"] == "HTTPS"


def test_issuer_kind_selects_the_cert_manager_annotation() -> None:
    annotations = nginx_annotations(settings(certManagerIssuerKind="Issuer"))
    assert annotations["cert-manager.io/issuer"] == "letsencrypt"
    assert "cert-manager.io/cluster-issuer" not in annotations


def test_existing_tls_secret_needs_no_cert_manager() -> None:
    ingress = objects(settings(certManagerIssuer=None, tlsSecretName="bao-public"))["Ingress"]
    assert not [k for k in ingress["metadata"]["annotations"] if k.startswith("cert-manager.io/")]
    assert ingress["spec"]["tls"] == [{"hosts": ["bao.example.com"], "secretName": "bao-public"}]


def test_cert_manager_gets_its_own_secret_name() -> None:
    assert objects(settings())["Ingress"]["spec"]["tls"] == [
        {"hosts": ["bao.example.com"], "secretName": "openbao-public-tls"}]


def test_backend_protocols_follow_the_minimum_tls_version() -> None:
    assert nginx_annotations(settings(tls_min="tls13"))[f"{NGINX}proxy-ssl-protocols"] == "TLSv1.3"


def test_no_external_dns_annotation_unless_asked() -> None:
    assert "external-dns.alpha.kubernetes.io/hostname" not in nginx_annotations(settings())


def test_ingress_routes_the_host_to_the_active_service_over_https() -> None:
    spec = objects(settings(className="public-nginx"))["Ingress"]["spec"]
    assert spec["ingressClassName"] == "public-nginx"
    assert spec["rules"] == [{"host": "bao.example.com", "http": {"paths": [{
        "path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "openbao-active", "port": {"number": 8200}}}}]}}]


def test_proxy_ssl_secret_holds_only_the_public_ca(prod_run: ProgramRun) -> None:
    """The annotation names ClusterPki's CA-only Secret, which exists in the same namespace."""
    ingress = prod_run.object("Ingress", "openbao")
    ns, _, name = ingress["metadata"]["annotations"][f"{NGINX}proxy-ssl-secret"].partition("/")
    assert ns == ingress["metadata"]["namespace"]
    secret = prod_run.object("Secret", name)
    assert secret["metadata"]["namespace"] == ns
    # A tls.crt/tls.key here would be presented by nginx as its client certificate.
    assert set(secret["stringData"]) == {"ca.crt"} and secret["type"] == "Opaque"
    assert secret["stringData"]["ca.crt"] == prod_run.object("Secret", "openbao-tls")["stringData"]["ca.crt"]
    assert "PRIVATE KEY" not in secret["stringData"]["ca.crt"]


def test_proxy_ssl_name_is_a_san_of_the_real_server_certificate(prod_run: ProgramRun) -> None:
    s = edge_spec(edge_args(parse_settings(stack_config("prod"), "prod"), CA))
    pem = prod_run.object("Secret", f"{s.name}-tls")["stringData"]["tls.crt"]
    sans = x509.load_pem_x509_certificate(pem.encode()).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert nginx_annotations(s)[f"{NGINX}proxy-ssl-name"] in sans.value.get_values_for_type(x509.DNSName)


# --- Gateway API ----------------------------------------------------------------------

def gateway() -> dict[str, dict[str, Any]]:
    return objects(settings(mode="gateway", gatewayName="public", gatewayNamespace="gateways"))


def test_gateway_mode_builds_route_policy_and_ca_configmap_only() -> None:
    assert set(gateway()) == {"HTTPRoute", "BackendTLSPolicy", "ConfigMap"}


def test_gateway_api_version_is_pinned_to_v1() -> None:
    objs = gateway()
    assert objs["HTTPRoute"]["apiVersion"] == objs["BackendTLSPolicy"]["apiVersion"] == "gateway.networking.k8s.io/v1"


def test_route_attaches_to_the_gateway_and_targets_the_active_service() -> None:
    spec = gateway()["HTTPRoute"]["spec"]
    assert spec["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "public",
                                   "namespace": "gateways"}]
    assert spec["hostnames"] == ["bao.example.com"]
    (rule,) = spec["rules"]
    assert rule["backendRefs"] == [{"group": "", "kind": "Service", "name": "openbao-active", "port": 8200}]
    assert all(m["path"]["value"].startswith("/") for m in rule["matches"])  # CEL rule of the CRD


def test_backend_tls_policy_validates_the_active_service_with_our_ca() -> None:
    objs = gateway()
    spec = objs["BackendTLSPolicy"]["spec"]
    assert spec["targetRefs"] == [{"group": "", "kind": "Service", "name": "openbao-active"}]
    validation = spec["validation"]
    assert validation["hostname"] == "openbao-active.openbao.svc"
    assert "wellKnownCACertificates" not in validation  # CEL: CA refs xor well-known CAs
    (ref,) = validation["caCertificateRefs"]
    configmap = objs["ConfigMap"]
    assert (ref["kind"], ref["name"]) == ("ConfigMap", configmap["metadata"]["name"]) == ("ConfigMap", "openbao-ca")
    assert configmap["data"] == {"ca.crt": CA}


def test_no_ingress_no_objects() -> None:
    assert edge_objects(edge_spec(edge_args(parse_settings({}, "dev"), CA)), CA) == {}


# --- component ------------------------------------------------------------------------

@pytest.mark.parametrize("mode, children", [
    ("nginx", {"edge-ingress": "kubernetes:networking.k8s.io/v1:Ingress"}),
    ("gateway", {"edge-backend-ca": "kubernetes:core/v1:ConfigMap",
                 "edge-route": "kubernetes:gateway.networking.k8s.io/v1:HTTPRoute",
                 "edge-backend-tls": "kubernetes:gateway.networking.k8s.io/v1:BackendTLSPolicy"}),
])
def test_component_children_and_url(mode: str, children: Mapping[str, str]) -> None:
    stack = parse_settings({**BASE, "ingress": {**BASE["ingress"], "mode": mode}}, "prod")
    s = edge_spec(edge_args(stack, CA))
    registrations, url = run_component(lambda: OpenBaoEdge("edge", edge_args(stack, CA)), lambda c: c.url)
    assert url == "https://bao.example.com"
    assert [r.type for r in registrations if not r.custom] == ["openbao-platform:index:OpenBaoEdge"]
    assert {r.name: r.type for r in registrations if r.custom} == children
    props = {r.name: r.plain_props for r in registrations if r.custom}
    if mode == "gateway":
        assert props["edge-backend-ca"]["metadata"]["name"] == backend_ca_name(s) == s.ca_bundle_name
        assert props["edge-backend-ca"]["data"] == {"ca.crt": CA}


def test_component_without_ingress_creates_nothing() -> None:
    s = parse_settings({}, "dev")
    registrations, url = run_component(lambda: OpenBaoEdge("edge", edge_args(s, CA)), lambda c: c.url)
    assert url is None and [r for r in registrations if r.custom] == []


# --- OpenBaoEdge as a reusable component: narrow args, validated, analyzable -----------------


def test_edge_stands_alone_without_stack_settings() -> None:
    """Publish another team's cluster "vault" in "secrets" on its Gateway; nginx with its own Secret."""
    from tests.support.component import run_components

    run = run_components(lambda: OpenBaoEdge("vault-edge", {
        "name": "vault", "namespace": "secrets", "mode": "gateway", "host": "vault.example.org",
        "ca_cert_pem": CA, "gateway_name": "public", "gateway_namespace": "gateways"}))
    assert {r.name for r in run.kubernetes_objects()} == {"vault-edge-backend-ca", "vault-edge-route",
                                                          "vault-edge-backend-tls"}
    route = run.object("HTTPRoute", "vault")
    assert route["metadata"]["namespace"] == "secrets" and route["spec"]["hostnames"] == ["vault.example.org"]
    assert route["spec"]["parentRefs"][0]["name"] == "public"
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == "vault-active"
    validation = run.object("BackendTLSPolicy", "vault")["spec"]["validation"]
    assert validation["hostname"] == "vault-active.secrets.svc"
    assert run.object("ConfigMap", "vault-ca")["data"] == {"ca.crt": CA}

    run = run_components(lambda: OpenBaoEdge("vault-edge", {
        "name": "vault", "namespace": "secrets", "mode": "nginx", "host": "vault.example.org",
        "tls_secret_name": "vault-public"}))
    ingress = run.object("Ingress", "vault")
    annotations = ingress["metadata"]["annotations"]
    assert annotations[f"{NGINX}proxy-ssl-secret"] == "secrets/vault-ca"
    assert annotations[f"{NGINX}proxy-ssl-name"] == "vault-active.secrets.svc"
    assert annotations[f"{NGINX}proxy-ssl-protocols"] == "TLSv1.2 TLSv1.3"  # secure default
    assert ingress["spec"]["tls"] == [{"hosts": ["vault.example.org"], "secretName": "vault-public"}]


def test_edge_rejects_bad_args_before_creating_anything() -> None:
    from openbao_platform.settings import ArgsError
    from tests.support.component import run_components

    errors: list[str] = []

    def build() -> None:
        for bad in ({"name": "vault", "namespace": "secrets", "mode": "nginx", "host": "vault",
                     "tls_min_version": "tls10"},
                    {"name": "vault", "namespace": "secrets", "mode": "gateway", "host": "vault.example.org"}):
            with pytest.raises(ArgsError) as err:
                OpenBaoEdge("vault-edge", bad)  # type: ignore[arg-type]
            errors.append(str(err.value))

    run = run_components(build)
    assert run.registrations == []  # validated before the component registers
    nginx, gateway = errors
    assert "OpenBaoEdgeArgs.host = \"vault\": is not a fully qualified DNS name. Fix: use e.g. bao.example.com." in nginx
    assert "OpenBaoEdgeArgs.tls_secret_name = null: exactly one public TLS source is needed" in nginx
    assert "OpenBaoEdgeArgs.tls_min_version = \"tls10\": is not allowed (TLS below 1.2 is broken). " \
           "Fix: use tls12 or tls13." in nginx
    assert "OpenBaoEdgeArgs.ca_cert_pem = null: is required when mode is gateway" in gateway and "Fix:" in gateway


def test_edge_schema_describes_every_input() -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    (comp,) = Analyzer("openbao-platform").analyze([OpenBaoEdge])["component_definitions"].values()
    assert set(comp.inputs) == {"name", "namespace", "mode", "host", "caCertPem", "tlsMinVersion", "className",
                                "tlsSecretName", "certManagerIssuer", "certManagerIssuerKind", "externalDns",
                                "gatewayName", "gatewayNamespace"}
    assert all(p.description for p in comp.inputs.values())
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"name", "namespace", "mode"}
    assert not comp.inputs["caCertPem"].plain  # may come from another resource (ClusterPki)
    assert set(comp.outputs) == {"url"} and all(p.description for p in comp.outputs.values())
