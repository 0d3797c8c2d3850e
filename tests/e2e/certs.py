"""A CA whose key the test holds, issuing server certificates shaped like ClusterPki's.

The render ships no CA key, so tests that must issue certificates (a renewal, a wrong SAN,
a foreign CA) make their own CA and install it on every node before start.
"""

from __future__ import annotations

import datetime
from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_KEY_USAGE_OFF = dict(content_commitment=False, data_encipherment=False, key_agreement=False,
                      encipher_only=False, decipher_only=False)


def _validity(builder: x509.CertificateBuilder,
              not_after: Optional[datetime.datetime] = None) -> x509.CertificateBuilder:
    """Valid from five minutes ago until ``not_after`` (default: two days from now)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    return (builder.not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(not_after or now + datetime.timedelta(days=2)))


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def cert_sans(pem: bytes) -> tuple[x509.Name, x509.SubjectAlternativeName]:
    """Subject and SANs of a PEM certificate (e.g. the rendered tls.crt)."""
    cert = x509.load_pem_x509_certificate(pem)
    return cert.subject, cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value


class TestCA:
    """A self-signed CA; ``issue`` signs server+client certificates with new keys and serials."""

    __test__ = False  # not a pytest test class

    def __init__(self, common_name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "openbao-platform e2e"),
                          x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        self.cert = (_validity(x509.CertificateBuilder()).subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key()).serial_number(x509.random_serial_number())
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                     .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False, key_cert_sign=True,
                                                  crl_sign=True, **_KEY_USAGE_OFF), critical=True)
                     .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
                     .sign(self.key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, subject: x509.Name, sans: x509.SubjectAlternativeName,
              not_after: Optional[datetime.datetime] = None) -> tuple[x509.Certificate, bytes]:
        """A server (+client) certificate for ``sans``, valid until ``not_after`` (default two
        days: a short one lets a test watch it expire); returns (certificate, key PEM)."""
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (_validity(x509.CertificateBuilder(), not_after).subject_name(subject).issuer_name(self.cert.subject)
                .public_key(key.public_key()).serial_number(x509.random_serial_number())
                .add_extension(sans, critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, key_cert_sign=False,
                                             crl_sign=False, **_KEY_USAGE_OFF), critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                                      ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                               critical=False)
                .sign(self.key, hashes.SHA256()))
        return cert, key_pem(key)

    def secret_files(self, cert: x509.Certificate, key: bytes) -> dict[str, bytes]:
        """The kubernetes.io/tls Secret's items, as the pods mount them."""
        return {"tls.crt": cert.public_bytes(serialization.Encoding.PEM), "tls.key": key, "ca.crt": self.pem}
