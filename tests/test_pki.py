"""ClusterPki: the server cert covers every name, has the right usages and chains to the CA."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from openbao_platform.pki import ca_early_renewal_hours, server_dns_names
from openbao_platform.settings import parse_settings
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
    names = server_dns_names(s, s.replicas)
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


def test_platform_maps_the_stack_to_the_pki_args() -> None:
    """pki_args is where the stack meets ClusterPki: today's SANs exactly, in order, and today's subjects."""
    from openbao_platform.platform import pki_args

    s = parse_settings({"namespace": "vault", "replicas": 1, "name": "bao", "pki": {"organization": "acme"}}, "qa")
    args = pki_args(s)
    assert args["dns_names"] == [
        "bao-0.bao-internal.vault.svc", "bao-0.bao-internal.vault.svc.cluster.local",
        "bao", "bao.vault", "bao.vault.svc", "bao.vault.svc.cluster.local",
        "bao-active", "bao-active.vault", "bao-active.vault.svc", "bao-active.vault.svc.cluster.local",
        "bao-standby", "bao-standby.vault", "bao-standby.vault.svc", "bao-standby.vault.svc.cluster.local",
        "bao-internal", "bao-internal.vault", "bao-internal.vault.svc", "bao-internal.vault.svc.cluster.local",
        "*.bao-internal.vault.svc", "*.bao-internal.vault.svc.cluster.local", "localhost"]
    assert (args["name"], args["namespace"], args["ca_common_name"], args["organization"]) == \
        ("bao", "vault", "bao qa CA", "acme")
    assert args["protect"] is s.protect and args["labels"] == s.common_labels
    assert {k: args[k] for k in ("ca_validity_hours", "server_validity_hours", "early_renewal_hours",  # type: ignore[misc]
                                 "key_algorithm", "ecdsa_curve", "rsa_bits")} == \
        {k: getattr(s.pki, k) for k in ("ca_validity_hours", "server_validity_hours", "early_renewal_hours",
                                        "key_algorithm", "ecdsa_curve", "rsa_bits")}


def test_stack_certificates_keep_their_subjects(prod_run: ProgramRun) -> None:
    server, ca = _certs(prod_run)
    cn = x509.NameOID.COMMON_NAME
    assert ca.subject.get_attributes_for_oid(cn)[0].value == "openbao prod CA"
    assert server.subject.get_attributes_for_oid(cn)[0].value == "openbao-active.openbao.svc"
    assert {c.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value for c in (ca, server)} == \
        {"openbao-platform"}


# --- ClusterPki as a reusable component: narrow args, validated, analyzable --------------------


_VAULT_DNS = ["vault.secrets.svc", "vault-active.secrets.svc", "*.vault-internal.secrets.svc"]


def test_cluster_pki_stands_alone_without_stack_settings() -> None:
    """Another team's program: cluster "vault" in namespace "secrets", three names, all defaults."""
    from openbao_platform.pki import ClusterPki
    from tests.support.component import run_components

    built: list[ClusterPki] = []

    def build() -> ClusterPki:
        built.append(ClusterPki("vault-pki", {"name": "vault", "namespace": "secrets", "dns_names": _VAULT_DNS}))
        return built[0]

    run = run_components(build)
    tls_secret, ca_secret = run.object("Secret", "vault-tls"), run.object("Secret", "vault-ca")
    assert tls_secret["metadata"]["namespace"] == ca_secret["metadata"]["namespace"] == "secrets"
    server = x509.load_pem_x509_certificate(tls_secret["stringData"]["tls.crt"].encode())
    ca = x509.load_pem_x509_certificate(ca_secret["stringData"]["ca.crt"].encode())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == _VAULT_DNS
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    server.verify_directly_issued_by(ca)
    cn = x509.NameOID.COMMON_NAME
    assert server.subject.get_attributes_for_oid(cn)[0].value == "vault-active.secrets.svc"
    assert ca.subject.get_attributes_for_oid(cn)[0].value == "vault secrets CA"
    assert isinstance(server.public_key(), ec.EllipticCurvePublicKey) and server.public_key().curve.name == "secp256r1"
    protected = {r.name for r in run.registrations if r.custom and r.options["protect"]}
    assert protected == {"vault-pki-ca-key", "vault-pki-ca-cert"}  # secure default: the CA, nothing else
    (signed,) = run.of_type("tls:index/locallySignedCert:LocallySignedCert")
    assert signed.options["replacementTrigger"], "the server certificate must be renewed by the clock"
    from tests.support.program import resolve

    (pki,) = built
    assert (resolve(pki.tls_secret_name), resolve(pki.ca_secret_name)) == ("vault-tls", "vault-ca")
    assert resolve(pki.ca_cert_pem) == ca_secret["stringData"]["ca.crt"]
    assert resolve(pki.server_cert_pem) == tls_secret["stringData"]["tls.crt"]


def test_cluster_pki_args_choose_key_subject_and_ip_addresses() -> None:
    from openbao_platform.pki import ClusterPki
    from tests.support.component import run_components

    run = run_components(lambda: ClusterPki("p", {
        "name": "vault", "namespace": "secrets", "dns_names": ["vault.example.com"], "ip_addresses": ["10.0.0.7", "::1"],
        "common_name": "vault.example.com", "ca_common_name": "Example Root", "organization": "example",
        "key_algorithm": "RSA", "rsa_bits": 4096, "server_validity_hours": 720, "early_renewal_hours": 240,
        "labels": {"team": "sec"}, "protect": False}))
    tls_secret = run.object("Secret", "vault-tls")
    server = x509.load_pem_x509_certificate(tls_secret["stringData"]["tls.crt"].encode())
    ca = x509.load_pem_x509_certificate(tls_secret["stringData"]["ca.crt"].encode())
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7"), ipaddress.ip_address("::1")]
    assert isinstance(server.public_key(), rsa.RSAPublicKey) and server.public_key().key_size == 4096
    assert ca.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == "Example Root"
    assert server.subject.get_attributes_for_oid(x509.NameOID.ORGANIZATION_NAME)[0].value == "example"
    assert (server.not_valid_after_utc - server.not_valid_before_utc).total_seconds() == 720 * 3600
    assert tls_secret["metadata"]["labels"] == {"team": "sec"}
    assert not any(r.options["protect"] for r in run.registrations if r.custom)


@pytest.mark.parametrize("bad,problem", [
    ({"key_algorithm": "RSA", "rsa_bits": 1024}, 'ClusterPkiArgs.rsa_bits = 1024: is too weak'),
    ({"dns_names": ["vault.secrets.svc", "Not_A_Name"]}, 'ClusterPkiArgs.dns_names = "Not_A_Name": is not a DNS name'),
    ({"dns_names": ["127.0.0.1"]}, 'ClusterPkiArgs.dns_names = "127.0.0.1": is an IP address'),
    ({"dns_names": []}, "ClusterPkiArgs.dns_names = []: is empty"),
    ({"dns_names": "vault.secrets.svc"}, 'ClusterPkiArgs.dns_names = "vault.secrets.svc": must be a list of strings'),
    ({"ip_addresses": ["localhost"]}, 'ClusterPkiArgs.ip_addresses = "localhost": is not an IP address'),
    ({"early_renewal_hours": 2160}, "ClusterPkiArgs.early_renewal_hours = 2160: is not shorter than"),
    ({"server_validity_hours": 10000}, "ClusterPkiArgs.server_validity_hours = 10000: exceeds 397 days"),
    ({"name": "Vault"}, 'ClusterPkiArgs.name = "Vault": is not a valid DNS-1123 label'),
    ({"namespace": None}, "ClusterPkiArgs.namespace = null: is required"),
    ({"common_name": " "}, 'ClusterPkiArgs.common_name = " ": is empty'),
    ({"protect": "yes"}, 'ClusterPkiArgs.protect = "yes": must be true or false'),
    ({"rsa_bit": 4096}, "ClusterPkiArgs.rsa_bit = 4096: is not a setting"),
    ({"labels": {"team": 1}}, 'ClusterPkiArgs.labels = {"team": 1}: must be a mapping of strings to strings'),
    ({"dns_names": ["a.svc", "a.svc"]}, 'ClusterPkiArgs.dns_names = ["a.svc", "a.svc"]: lists a name twice'),
])
def test_cluster_pki_rejects_bad_args_before_creating_anything(bad: dict[str, object], problem: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from openbao_platform.pki import ClusterPki
    from tests.support.component import rejected_args

    args = {k: v for k, v in {"name": "vault", "namespace": "secrets", "dns_names": _VAULT_DNS, **bad}.items()
            if v is not None}
    rejected_args(lambda: ClusterPki("vault-pki", args), monkeypatch, problem)  # type: ignore[arg-type]


def test_cluster_pki_reports_every_problem_at_once() -> None:
    from openbao_platform.pki import ClusterPki
    from openbao_platform.settings import ArgsError
    from tests.support.component import run_components

    with pytest.raises(ArgsError) as err:
        run_components(lambda: ClusterPki("p", {"name": "vault", "rsa_bits": 1000, "ecdsa_curve": "P192"}))  # type: ignore[typeddict-item]
    assert [p.split(" = ")[0] for p in err.value.problems] == [
        "ClusterPkiArgs.ecdsa_curve", "ClusterPkiArgs.rsa_bits", "ClusterPkiArgs.namespace"]


def test_cluster_pki_schema_describes_every_input() -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    from openbao_platform.pki import ClusterPki

    (comp,) = Analyzer("openbao-platform").analyze([ClusterPki])["component_definitions"].values()
    assert set(comp.inputs) == {"name", "namespace", "dnsNames", "ipAddresses", "commonName", "caCommonName",
                                "organization", "caValidityHours", "serverValidityHours", "earlyRenewalHours",
                                "keyAlgorithm", "ecdsaCurve", "rsaBits", "labels", "protect", "replicas"}
    assert all(p.description for p in comp.inputs.values())
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"name", "namespace"}
    assert comp.inputs["dnsNames"].type.value == "array" and comp.inputs["dnsNames"].items.type.value == "string"
    assert set(comp.outputs) == {"caCertPem", "serverCertPem", "serverCertNotAfter", "tlsSecretName", "caSecretName"}
    assert all(p.description and p.type.value == "string" for p in comp.outputs.values())


def test_cluster_pki_derives_every_cluster_name_when_dns_names_is_omitted() -> None:
    """Other languages have no server_dns_names helper: the default covers the whole cluster."""
    from openbao_platform.naming import ClusterNames
    from openbao_platform.pki import ClusterPki, server_dns_names
    from tests.support.component import run_components

    run = run_components(lambda: ClusterPki("p", {"name": "vault", "namespace": "secrets", "replicas": 5}))
    (csr,) = run.of_type("tls:index/certRequest:CertRequest")
    assert csr.plain_props["dnsNames"] == server_dns_names(ClusterNames("vault", "secrets"), 5)
    assert "vault-4.vault-internal.secrets.svc" in csr.plain_props["dnsNames"]
