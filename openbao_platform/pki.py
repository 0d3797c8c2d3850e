"""ClusterPki: the private CA and the server certificate every OpenBao pod serves.

One certificate covers the whole cluster (each pod's stable DNS name, the Services,
localhost and 127.0.0.1) because the pods share one Secret; Raft joins and the ingress both
verify it against the private CA. The server certificate is re-issued by the clock, once per
renewal period (``openbao_platform/renewal.py``), and the pods pick it up without a restart.

The component takes only what a PKI for any OpenBao cluster needs (``ClusterPkiArgs``); the
stack maps its settings to these args in ``openbao_platform/platform.py`` (``pki_args``), and
``server_dns_names`` gives the SANs of a cluster named the way ``openbao_platform/naming.py`` names it.
"""


import ipaddress
import re
from typing import Any, NamedTuple, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from openbao_platform import renewal
from openbao_platform.lifecycle import stateful
from openbao_platform.naming import ClusterNames, NamedCluster
from openbao_platform.settings import ArgsCheck, PkiSettings, _camel, _parse_replicas
from openbao_platform.tokens import token, with_previous_token

#: Usages of the CA certificate: it signs, nothing else.
CA_USES = ["cert_signing", "crl_signing", "digital_signature"]
#: Server and client auth: the same cert serves the API and authenticates Raft joins.
SERVER_USES = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]
#: Longest CA early-renewal window (one year): renewing the CA re-issues every cert.
CA_MAX_EARLY_RENEWAL_HOURS = 8760
#: The server certificate's default IP SANs: the pods' own probes and CLI reach 127.0.0.1.
SERVER_IP_ADDRESSES = ["127.0.0.1"]

#: A DNS SAN: lower-case host name labels, optionally a leading ``*.`` wildcard label.
_DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"
_DNS_NAME = re.compile(rf"^(\*\.)?{_DNS_LABEL}(\.{_DNS_LABEL})*$")
_PKI_KEYS = ("ca_validity_hours", "server_validity_hours", "early_renewal_hours", "key_algorithm", "ecdsa_curve",
             "rsa_bits", "organization")


def server_dns_names(names: NamedCluster, replicas: int) -> list[str]:
    """Every name a client or peer may use to reach a pod of the cluster, short and fully qualified.

    ``names`` is the cluster's identity (``ClusterNames(name, namespace)``, or the stack Settings);
    ``replicas`` the pods the StatefulSet runs.
    """
    out: list[str] = []
    for i in range(replicas):
        pod = names.pod_dns_name(i)
        out += [pod, f"{pod}.cluster.local"]
    for svc in (names.api_service, names.active_service, names.standby_service, names.headless_service):
        out += [svc, f"{svc}.{names.namespace}", names.service_dns_name(svc),
                f"{names.service_dns_name(svc)}.cluster.local"]
    # Wildcard under the headless Service covers pods added by a later scale-up.
    out.append(f"*.{names.headless_service}.{names.namespace}.svc")
    out.append(f"*.{names.headless_service}.{names.namespace}.svc.cluster.local")
    out.append("localhost")
    return list(dict.fromkeys(out))


def ca_early_renewal_hours(pki: PkiSettings) -> int:
    """Renew the CA in the last quarter of its life, at most a year ahead."""
    return min(CA_MAX_EARLY_RENEWAL_HOURS, pki.ca_validity_hours // 4)


class ClusterPkiArgs(TypedDict, total=False):
    """Inputs of ClusterPki."""

    name: Required[str]
    """Name of the OpenBao cluster (its StatefulSet); the Secrets are ``<name>-tls`` and ``<name>-ca``."""
    namespace: Required[str]
    """Namespace of the cluster and of both Secrets."""
    dns_names: list[str]
    """Server certificate DNS SANs (``*.`` allowed). Default: every name of the cluster's pods and Services."""
    replicas: int
    """Pods of the cluster, for the default ``dns_names`` (odd, 1-7). Default 3."""
    ip_addresses: list[str]
    """IP SANs of the server certificate. Default ``["127.0.0.1"]`` (the pods' own probes and CLI)."""
    common_name: str
    """Subject common name of the server certificate. Default the active Service, ``<name>-active.<namespace>.svc``."""
    ca_common_name: str
    """Subject common name of the CA certificate. Default ``<name> <namespace> CA``."""
    organization: str
    """Subject organization of both certificates. Default ``openbao-platform``."""
    ca_validity_hours: int
    """Lifetime of the CA certificate in hours (at least 24). Default 87600 (10 years)."""
    server_validity_hours: int
    """Lifetime of the server certificate in hours, shorter than the CA's and at most 9528 (397 days). Default 2160."""
    early_renewal_hours: int
    """The server certificate's early-renewal window in hours, shorter than its lifetime. Default 720 (30 days)."""
    key_algorithm: str
    """Key type of both keys: ``ECDSA`` or ``RSA``. Default ``ECDSA``."""
    ecdsa_curve: str
    """ECDSA curve: ``P256``, ``P384`` or ``P521``. Default ``P256``."""
    rsa_bits: int
    """RSA key size, a multiple of 1024 and at least 2048 (used with ``RSA``). Default 3072."""
    labels: dict[str, str]
    """Labels of both Secrets."""
    protect: bool
    """Refuse replacement and deletion of the CA key and certificate (default true: every client trusts them)."""


class PkiSpec(NamedTuple):
    """ClusterPkiArgs, validated and with every default filled in."""

    cluster: ClusterNames
    pki: PkiSettings
    dns_names: list[str]
    ip_addresses: list[str]
    common_name: str
    ca_common_name: str
    labels: dict[str, str]
    protect: bool


def _check_rest(r: Any) -> dict[str, Any]:
    """Every arg outside the ``pki`` section's rules (``r`` reads the args, keys camelCased)."""
    r.unknown_keys("", [_camel(k) for k in ClusterPkiArgs.__annotations__])
    for key, fix in (("name", "name the OpenBao cluster, e.g. `openbao`"),
                     ("namespace", "name the cluster's namespace, e.g. `openbao`")):
        if key not in r.raw:
            r.fail(key, None, "is required", fix)
    dns_names = r.raw.get("dnsNames", [])
    if not isinstance(dns_names, list) or not all(isinstance(n, str) for n in dns_names):
        r.fail("dnsNames", dns_names, "must be a list of strings", 'list DNS names, e.g. ["vault.secrets.svc"]')
        dns_names = []
    elif "dnsNames" in r.raw and not dns_names:
        r.fail("dnsNames", dns_names, "is empty; the certificate would match no name",
               "list the names clients and peers use (openbao_platform.pki.server_dns_names)")
    for n in dns_names:
        if _is_ip(n):
            r.fail("dnsNames", n, "is an IP address, not a DNS name", "list it in ip_addresses instead")
        elif len(n) > 253 or not _DNS_NAME.match(n):
            r.fail("dnsNames", n, "is not a DNS name (lower-case labels of letters, digits and '-', at most 63 "
                   "characters each, an optional leading `*.`)", "use a name like `vault-0.vault-internal.secrets.svc`")
    if len(set(dns_names)) != len(dns_names):
        r.fail("dnsNames", dns_names, "lists a name twice", "list each name once")
    ips = r.raw.get("ipAddresses", SERVER_IP_ADDRESSES)
    if not isinstance(ips, list) or not all(isinstance(n, str) for n in ips):
        r.fail("ipAddresses", ips, "must be a list of strings", 'list IP addresses, e.g. ["127.0.0.1"]')
        ips = []
    for ip in ips:
        if not _is_ip(ip):
            r.fail("ipAddresses", ip, "is not an IP address", "use e.g. 127.0.0.1 or ::1; put host names in dns_names")
    if len(set(ips)) != len(ips):
        r.fail("ipAddresses", ips, "lists an address twice", "list each address once")
    subject = {}
    for key in ("commonName", "caCommonName"):
        value = r.get(key, str, None, "name the certificate's subject, or omit it for the default")
        if value is not None and not value.strip():
            r.fail(key, value, "is empty", "name the certificate's subject, or omit it for the default")
        subject[key] = value
    labels = r.raw.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        r.fail("labels", labels, "must be a mapping of strings to strings", "use e.g. {\"team\": \"security\"}")
        labels = {}
    protect = r.get("protect", bool, True, "use true (the engine refuses to replace or delete the CA) or false")
    return {"dns_names": list(dns_names) if "dnsNames" in r.raw else None, "ip_addresses": list(ips), "common_name": subject["commonName"],
            "ca_common_name": subject["caCommonName"], "labels": dict(labels), "protect": protect}


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def pki_spec(args: ClusterPkiArgs) -> PkiSpec:
    """The validated args with their defaults (the stack config's ``pki`` rules), or ArgsError."""
    with ArgsCheck("ClusterPki") as check:
        cluster = check.section("", {k: args.get(k) for k in ("name", "namespace")})
        pki = check.section("pki", {k: args.get(k) for k in _PKI_KEYS})
        replicas = check.section("", {"replicas": args.get("replicas")}, _parse_replicas)
        rest = check.section("", {k: v for k, v in args.items() if k not in _PKI_KEYS and k != "replicas"},
                             parse=_check_rest)
    dns_names = rest["dns_names"] if rest["dns_names"] is not None else server_dns_names(cluster, replicas)
    return PkiSpec(cluster=cluster, pki=pki, dns_names=dns_names, ip_addresses=rest["ip_addresses"],
                   common_name=rest["common_name"] or cluster.active_dns_name,
                   ca_common_name=rest["ca_common_name"] or f"{cluster.name} {cluster.namespace} CA",
                   labels=rest["labels"], protect=rest["protect"])


def _key(name: str, pki: PkiSettings, opts: pulumi.ResourceOptions) -> tls.PrivateKey:
    if pki.key_algorithm == "RSA":
        return tls.PrivateKey(name, algorithm="RSA", rsa_bits=pki.rsa_bits, opts=opts)
    return tls.PrivateKey(name, algorithm="ECDSA", ecdsa_curve=pki.ecdsa_curve, opts=opts)


class ClusterPki(pulumi.ComponentResource):
    """CA key + self-signed CA, server key + CA-signed server cert, and their Secrets."""

    ca_cert_pem: pulumi.Output[str]
    """The CA certificate (public): clients set BAO_CACERT to it."""
    server_cert_pem: pulumi.Output[str]
    """The server certificate the pods serve."""
    server_cert_not_after: pulumi.Output[str]
    """RFC 3339 end of the server certificate's validity (for the renewal alert)."""
    tls_secret_name: pulumi.Output[str]
    """kubernetes.io/tls Secret with tls.crt, tls.key and ca.crt, mounted by the pods."""
    ca_secret_name: pulumi.Output[str]
    """Secret holding only ca.crt, for the ingress controller's backend verification."""

    def __init__(self, name: str, args: ClusterPkiArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        spec = pki_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("ClusterPki"), name, None, with_previous_token(opts, "openbao:pki:ClusterPki"))
        child = pulumi.ResourceOptions(parent=self)
        cluster, pki, protect = spec.cluster, spec.pki, spec.protect
        subject_org = pki.organization

        # Every client trusts this CA: a new CA key or certificate breaks them all at once, so the
        # engine must refuse to replace either (a CA rotation is a procedure, not a diff).
        ca_key = _key(f"{name}-ca-key", pki, stateful(self, protect))
        ca_cert = tls.SelfSignedCert(
            f"{name}-ca-cert",
            private_key_pem=ca_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=spec.ca_common_name, organization=subject_org),
            is_ca_certificate=True,
            validity_period_hours=pki.ca_validity_hours,
            early_renewal_hours=ca_early_renewal_hours(pki),
            allowed_uses=CA_USES,
            opts=stateful(self, protect),
        )
        server_key = _key(f"{name}-server-key", pki, child)
        csr = tls.CertRequest(
            f"{name}-server-csr",
            private_key_pem=server_key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=spec.common_name, organization=subject_org),
            dns_names=spec.dns_names,
            ip_addresses=spec.ip_addresses,
            opts=child,
        )
        server_cert = tls.LocallySignedCert(
            f"{name}-server-cert",
            cert_request_pem=csr.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca_cert.cert_pem,
            validity_period_hours=pki.server_validity_hours,
            early_renewal_hours=pki.early_renewal_hours,
            allowed_uses=SERVER_USES,
            # Re-issued once per renewal period, before its early-renewal window opens, by any
            # `pulumi up` (the scheduled one in .github/workflows/renewal.yml): openbao_platform/renewal.py.
            # The CA gets no trigger: it is protected, and a new CA is a procedure.
            opts=pulumi.ResourceOptions(parent=self, replacement_trigger=renewal.renewal_trigger(
                pki.server_validity_hours, pki.early_renewal_hours)),
        )
        meta = {"namespace": cluster.namespace, "labels": spec.labels}
        tls_secret = k8s.core.v1.Secret(
            f"{name}-tls",
            metadata={**meta, "name": f"{cluster.name}-tls"},
            type="kubernetes.io/tls",
            string_data=pulumi.Output.secret(pulumi.Output.all(server_cert.cert_pem, server_key.private_key_pem,
                                                               ca_cert.cert_pem).apply(
                lambda v: {"tls.crt": v[0], "tls.key": v[1], "ca.crt": v[2]})),
            opts=child,
        )
        ca_secret = k8s.core.v1.Secret(
            f"{name}-ca",
            metadata={**meta, "name": cluster.ca_bundle_name},
            type="Opaque",
            string_data=ca_cert.cert_pem.apply(lambda pem: {"ca.crt": pem}),
            opts=child,
        )

        self.ca_cert_pem = ca_cert.cert_pem
        self.server_cert_pem = server_cert.cert_pem
        self.server_cert_not_after = server_cert.validity_end_time
        self.tls_secret_name = tls_secret.metadata.name
        self.ca_secret_name = ca_secret.metadata.name
        self.register_outputs({
            "ca_cert_pem": self.ca_cert_pem,
            "server_cert_pem": self.server_cert_pem,
            "server_cert_not_after": self.server_cert_not_after,
            "tls_secret_name": self.tls_secret_name,
            "ca_secret_name": self.ca_secret_name,
        })
