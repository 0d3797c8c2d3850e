"""ClusterPki: the private CA and the server certificate every OpenBao pod serves.

One certificate covers the whole cluster (each pod's stable DNS name, the Services,
localhost and 127.0.0.1) because the pods share one Secret; Raft joins and the ingress both
verify it against the private CA. ``early_renewal_hours`` makes any ``pulumi up`` inside the
renewal window issue a fresh certificate, which the pods pick up without a restart.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components import renewal
from components.lifecycle import stateful
from components.settings import PkiSettings, Settings

#: Usages of the CA certificate: it signs, nothing else.
CA_USES = ["cert_signing", "crl_signing", "digital_signature"]
#: Server and client auth: the same cert serves the API and authenticates Raft joins.
SERVER_USES = ["digital_signature", "key_encipherment", "server_auth", "client_auth"]
#: Longest CA early-renewal window (one year): renewing the CA re-issues every cert.
CA_MAX_EARLY_RENEWAL_HOURS = 8760


def server_dns_names(settings: Settings) -> list[str]:
    """Every name a client or peer may use to reach a pod, short and fully qualified."""
    names: list[str] = []
    for i in range(settings.replicas):
        pod = settings.pod_dns_name(i)
        names += [pod, f"{pod}.cluster.local"]
    for svc in (settings.api_service, settings.active_service, settings.standby_service,
                settings.headless_service):
        names += [svc, f"{svc}.{settings.namespace}", settings.service_dns_name(svc),
                  f"{settings.service_dns_name(svc)}.cluster.local"]
    # Wildcard under the headless Service covers pods added by a later scale-up.
    names.append(f"*.{settings.headless_service}.{settings.namespace}.svc")
    names.append(f"*.{settings.headless_service}.{settings.namespace}.svc.cluster.local")
    names.append("localhost")
    return list(dict.fromkeys(names))


SERVER_IP_ADDRESSES = ["127.0.0.1"]


def ca_early_renewal_hours(pki: PkiSettings) -> int:
    """Renew the CA in the last quarter of its life, at most a year ahead."""
    return min(CA_MAX_EARLY_RENEWAL_HOURS, pki.ca_validity_hours // 4)


def _key(name: str, pki: PkiSettings, opts: pulumi.ResourceOptions) -> tls.PrivateKey:
    if pki.key_algorithm == "RSA":
        return tls.PrivateKey(name, algorithm="RSA", rsa_bits=pki.rsa_bits, opts=opts)
    return tls.PrivateKey(name, algorithm="ECDSA", ecdsa_curve=pki.ecdsa_curve, opts=opts)


@dataclass(frozen=True)
class ClusterPkiArgs:
    """Inputs of ClusterPki."""

    settings: Settings


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
        super().__init__("openbao:pki:ClusterPki", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        subject_org = s.pki.organization

        # Every client trusts this CA: a new CA key or certificate breaks them all at once, so the
        # engine must refuse to replace either (a CA rotation is a procedure, not a diff).
        ca_key = _key(f"{name}-ca-key", s.pki, stateful(self, s.protect))
        ca_cert = tls.SelfSignedCert(
            f"{name}-ca-cert",
            private_key_pem=ca_key.private_key_pem,
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{s.name} {s.stack} CA", organization=subject_org),
            is_ca_certificate=True,
            validity_period_hours=s.pki.ca_validity_hours,
            early_renewal_hours=ca_early_renewal_hours(s.pki),
            allowed_uses=CA_USES,
            opts=stateful(self, s.protect),
        )
        server_key = _key(f"{name}-server-key", s.pki, child)
        csr = tls.CertRequest(
            f"{name}-server-csr",
            private_key_pem=server_key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=s.active_dns_name, organization=subject_org),
            dns_names=server_dns_names(s),
            ip_addresses=SERVER_IP_ADDRESSES,
            opts=child,
        )
        server_cert = tls.LocallySignedCert(
            f"{name}-server-cert",
            cert_request_pem=csr.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca_cert.cert_pem,
            validity_period_hours=s.pki.server_validity_hours,
            early_renewal_hours=s.pki.early_renewal_hours,
            allowed_uses=SERVER_USES,
            # Re-issued once per renewal period, before its early-renewal window opens, by any
            # `pulumi up` (the scheduled one in .github/workflows/renewal.yml): components/renewal.py.
            # The CA gets no trigger: it is protected, and a new CA is a procedure.
            opts=pulumi.ResourceOptions(parent=self, replacement_trigger=renewal.renewal_trigger(
                s.pki.server_validity_hours, s.pki.early_renewal_hours)),
        )
        meta = {"namespace": s.namespace, "labels": s.common_labels}
        tls_secret = k8s.core.v1.Secret(
            f"{name}-tls",
            metadata={**meta, "name": f"{s.name}-tls"},
            type="kubernetes.io/tls",
            string_data=pulumi.Output.secret(pulumi.Output.all(server_cert.cert_pem, server_key.private_key_pem,
                                                               ca_cert.cert_pem).apply(
                lambda v: {"tls.crt": v[0], "tls.key": v[1], "ca.crt": v[2]})),
            opts=child,
        )
        ca_secret = k8s.core.v1.Secret(
            f"{name}-ca",
            metadata={**meta, "name": s.ca_bundle_name},
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
