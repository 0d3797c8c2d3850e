"""ClusterPki: the server cert covers every name, has the right usages and chains to the CA."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from components.pki import ca_early_renewal_hours, server_dns_names
from components.settings import parse_settings
from pulumi.runtime import rpc
from tests.support.program import ProgramRun, run_program, stack_config


def _certs(run: ProgramRun) -> tuple[x509.Certificate, x509.Certificate]:
    tls = run.object("Secret", "openbao-tls")["stringData"]
    return (x509.load_pem_x509_certificate(tls["tls.crt"].encode()),
            x509.load_pem_x509_certificate(tls["ca.crt"].encode()))


def test_server_cert_sans_cover_every_pod_service_and_loopback(prod_run: ProgramRun) -> None:
    server, _ = _certs(prod_run)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    dns = set(sans.get_values_for_type(x509.DNSName))
    ips = set(sans.get_values_for_type(x509.IPAddress))
    for i in range(5):
        assert f"openbao-{i}.openbao-internal.openbao.svc" in dns
        assert f"openbao-{i}.openbao-internal.openbao.svc.cluster.local" in dns
    for svc in ("openbao", "openbao-active", "openbao-standby"):
        assert f"{svc}.openbao.svc" in dns and f"{svc}.openbao.svc.cluster.local" in dns
    assert "localhost" in dns
    assert ipaddress.ip_address("127.0.0.1") in ips


def test_server_cert_usages_and_chain(prod_run: ProgramRun) -> None:
    server, ca = _certs(prod_run)
    eku = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}
    ku = server.extensions.get_extension_for_class(x509.KeyUsage).value
    assert ku.digital_signature and not ku.key_cert_sign
    assert server.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    server.verify_directly_issued_by(ca)  # raises if the signature or issuer is wrong
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert ca.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign


def test_validity_and_early_renewal_follow_settings(prod_run: ProgramRun) -> None:
    s = parse_settings(stack_config("prod"), "prod")
    server, ca = _certs(prod_run)
    hours = (server.not_valid_after_utc - server.not_valid_before_utc).total_seconds() / 3600
    assert hours == s.pki.server_validity_hours
    ca_hours = (ca.not_valid_after_utc - ca.not_valid_before_utc).total_seconds() / 3600
    assert ca_hours == s.pki.ca_validity_hours
    (signed,) = prod_run.of_type("tls:index/locallySignedCert:LocallySignedCert")
    assert signed.plain_props["earlyRenewalHours"] == s.pki.early_renewal_hours
    (self_signed,) = prod_run.of_type("tls:index/selfSignedCert:SelfSignedCert")
    assert self_signed.plain_props["earlyRenewalHours"] == ca_early_renewal_hours(s.pki) > 0
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey)
    assert server.public_key().curve.name == "secp384r1"  # prod asks for P384


def test_rsa_setting_issues_rsa_keys() -> None:
    raw = {**stack_config("dev"), "pki": {"keyAlgorithm": "RSA", "rsaBits": 3072}}
    run = run_program("dev", raw)
    server, _ = _certs(run)
    assert isinstance(server.public_key(), rsa.RSAPublicKey) and server.public_key().key_size == 3072


def test_tls_secret_shape_and_secrecy(prod_run: ProgramRun) -> None:
    (reg,) = [r for r in prod_run.of_type("kubernetes:core/v1:Secret") if r.props["metadata"]["name"] == "openbao-tls"]
    assert reg.props["type"] == "kubernetes.io/tls"
    assert reg.props["stringData"].get(rpc._special_sig_key) == rpc._special_secret_sig, \
        "the whole stringData (with tls.key) must be a secret"
    assert set(reg.plain_props["stringData"]) == {"tls.crt", "tls.key", "ca.crt"}
    assert "PRIVATE KEY" in reg.plain_props["stringData"]["tls.key"]


def test_ca_secret_holds_only_the_public_ca(prod_run: ProgramRun) -> None:
    ca = prod_run.object("Secret", "openbao-ca")
    assert set(ca["stringData"]) == {"ca.crt"}
    assert "PRIVATE" not in ca["stringData"]["ca.crt"]


def test_dns_names_follow_namespace_and_replicas() -> None:
    s = parse_settings({"namespace": "vault", "replicas": 3, "name": "bao"}, "t")
    names = server_dns_names(s)
    assert "bao-2.bao-internal.vault.svc" in names and "bao-3.bao-internal.vault.svc" not in names
    assert len(names) == len(set(names))


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_ca_output_is_the_signing_ca(stack: str, request: pytest.FixtureRequest) -> None:
    from tests.support.program import resolve

    run: ProgramRun = request.getfixturevalue(f"{stack}_run")
    server, ca = _certs(run)
    exported = x509.load_pem_x509_certificate(resolve(run.outputs["ca_cert_pem"]).encode())
    assert exported == ca
    server.verify_directly_issued_by(exported)
