"""Fake pulumi-tls and pulumi-random providers that compute real outputs.

No provider plugin can run here, so these stand in for them under ``set_mocks``. They return
real PEM keys, CSRs and X.509 certificates (with the requested SANs, usages, CA flag and
validity) and real random bytes, never placeholder strings, so tests can parse and verify
what the program wires together, and the e2e suite can serve the certificates with a real
OpenBao. Outputs the real providers mark secret are returned secret here too.
"""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import secrets
import string
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pulumi.runtime import rpc

_CURVES = {"P224": ec.SECP224R1, "P256": ec.SECP256R1, "P384": ec.SECP384R1, "P521": ec.SECP521R1}
_EKU = {"server_auth": ExtendedKeyUsageOID.SERVER_AUTH, "client_auth": ExtendedKeyUsageOID.CLIENT_AUTH,
        "code_signing": ExtendedKeyUsageOID.CODE_SIGNING, "email_protection": ExtendedKeyUsageOID.EMAIL_PROTECTION,
        "timestamping": ExtendedKeyUsageOID.TIME_STAMPING, "ocsp_signing": ExtendedKeyUsageOID.OCSP_SIGNING}
_KEY_USAGE_FLAGS = {"digital_signature": "digital_signature", "content_commitment": "content_commitment",
                    "key_encipherment": "key_encipherment", "data_encipherment": "data_encipherment",
                    "key_agreement": "key_agreement", "cert_signing": "key_cert_sign", "crl_signing": "crl_sign",
                    "encipher_only": "encipher_only", "decipher_only": "decipher_only"}


def secret(value: Any) -> dict[str, Any]:
    """Wrap a value the way the engine marks a secret output."""
    return {rpc._special_sig_key: rpc._special_secret_sig, "value": value}


def unwrap(value: Any) -> Any:
    """Strip secret wrappers (recursively) from mock inputs."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return unwrap(value["value"])
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    return value


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _rfc3339(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _load_key(pem: str) -> Any:
    return serialization.load_pem_private_key(pem.encode(), password=None)


def _sign_hash(key: Any) -> Any:
    return None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()


def _name(subject: dict[str, Any] | None) -> x509.Name:
    subject = subject or {}
    attrs = []
    if subject.get("organization"):
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, subject["organization"]))
    if subject.get("commonName"):
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, subject["commonName"]))
    return x509.Name(attrs)


def _sans(dns_names: list[str] | None, ips: list[str] | None) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = [x509.DNSName(n) for n in dns_names or []]
    out += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips or []]
    return out


def private_key(inputs: dict[str, Any]) -> dict[str, Any]:
    algorithm = inputs.get("algorithm", "RSA")
    if algorithm == "RSA":
        key: Any = rsa.generate_private_key(public_exponent=65537, key_size=int(inputs.get("rsaBits", 2048)))
    elif algorithm == "ECDSA":
        key = ec.generate_private_key(_CURVES[inputs.get("ecdsaCurve", "P224")]())
    elif algorithm == "ED25519":
        key = ed25519.Ed25519PrivateKey.generate()
    else:
        raise ValueError(f"fake tls: unsupported algorithm {algorithm!r}")
    pkcs8 = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode()
    traditional = pkcs8 if algorithm == "ED25519" else key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()).decode()
    pub = key.public_key()
    return {**inputs,
            "privateKeyPem": secret(traditional), "privateKeyPemPkcs8": secret(pkcs8),
            "publicKeyPem": pub.public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
            "publicKeyOpenssh": pub.public_bytes(serialization.Encoding.OpenSSH,
                                                 serialization.PublicFormat.OpenSSH).decode() + "\n"}


def _build_cert(inputs: dict[str, Any], subject: x509.Name, issuer: x509.Name, public_key: Any, signer: Any,
                sans: list[x509.GeneralName], issuer_public: Any) -> dict[str, Any]:
    start = _now()
    end = start + dt.timedelta(hours=int(inputs["validityPeriodHours"]))
    uses = list(inputs.get("allowedUses") or [])
    is_ca = bool(inputs.get("isCaCertificate", False))
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
               .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
               .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True))
    flags = {v: False for v in _KEY_USAGE_FLAGS.values()}
    for use in uses:
        if use in _KEY_USAGE_FLAGS:
            flags[_KEY_USAGE_FLAGS[use]] = True
    if any(flags.values()):
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    ekus = [_EKU[u] for u in uses if u in _EKU]
    if ekus:
        builder = builder.add_extension(x509.ExtendedKeyUsage(ekus), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    builder = builder.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public), critical=False)
    cert = builder.sign(signer, _sign_hash(signer))
    early = int(inputs.get("earlyRenewalHours") or 0)
    return {**inputs,
            "certPem": cert.public_bytes(serialization.Encoding.PEM).decode(),
            "validityStartTime": _rfc3339(start), "validityEndTime": _rfc3339(end),
            "readyForRenewal": _now() >= end - dt.timedelta(hours=early)}


def self_signed_cert(inputs: dict[str, Any]) -> dict[str, Any]:
    key = _load_key(inputs["privateKeyPem"])
    name = _name(inputs.get("subject"))
    out = _build_cert(inputs, name, name, key.public_key(), key,
                      _sans(inputs.get("dnsNames"), inputs.get("ipAddresses")), key.public_key())
    out["privateKeyPem"] = secret(inputs["privateKeyPem"])
    return out


def cert_request(inputs: dict[str, Any]) -> dict[str, Any]:
    key = _load_key(inputs["privateKeyPem"])
    builder = x509.CertificateSigningRequestBuilder().subject_name(_name(inputs.get("subject")))
    sans = _sans(inputs.get("dnsNames"), inputs.get("ipAddresses"))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = builder.sign(key, _sign_hash(key))
    return {**inputs, "privateKeyPem": secret(inputs["privateKeyPem"]),
            "certRequestPem": csr.public_bytes(serialization.Encoding.PEM).decode()}


def locally_signed_cert(inputs: dict[str, Any]) -> dict[str, Any]:
    csr = x509.load_pem_x509_csr(inputs["certRequestPem"].encode())
    ca_key = _load_key(inputs["caPrivateKeyPem"])
    ca_cert = x509.load_pem_x509_certificate(inputs["caCertPem"].encode())
    try:
        sans = list(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        sans = []
    out = _build_cert(inputs, csr.subject, ca_cert.subject, csr.public_key(), ca_key, sans, ca_cert.public_key())
    out["caPrivateKeyPem"] = secret(inputs["caPrivateKeyPem"])
    return out


def random_bytes(inputs: dict[str, Any]) -> dict[str, Any]:
    raw = secrets.token_bytes(int(inputs["length"]))
    return {**inputs, "base64": secret(base64.b64encode(raw).decode()), "hex": secret(raw.hex())}


def random_password(inputs: dict[str, Any]) -> dict[str, Any]:
    """Honours length, character classes and minimum counts like the real provider."""
    length = int(inputs["length"])
    classes = []
    for flag, chars, minimum in (("lower", string.ascii_lowercase, "minLower"),
                                 ("upper", string.ascii_uppercase, "minUpper"),
                                 ("numeric", string.digits, "minNumeric"),
                                 ("special", inputs.get("overrideSpecial") or "!@#$%&*()-_=+[]{}<>:?", "minSpecial")):
        if inputs.get(flag, True):
            classes.append((chars, int(inputs.get(minimum) or 0)))
    chars = [secrets.choice(c) for c, n in classes for _ in range(n)]
    pool = "".join(c for c, _ in classes)
    chars += [secrets.choice(pool) for _ in range(length - len(chars))]
    secrets.SystemRandom().shuffle(chars)
    value = "".join(chars)
    return {**inputs, "result": secret(value), "bcryptHash": secret("$2a$10$" + secrets.token_hex(26))}


#: Type token -> function(inputs without secret wrappers) -> outputs.
FAKES: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "tls:index/privateKey:PrivateKey": private_key,
    "tls:index/selfSignedCert:SelfSignedCert": self_signed_cert,
    "tls:index/certRequest:CertRequest": cert_request,
    "tls:index/locallySignedCert:LocallySignedCert": locally_signed_cert,
    "random:index/randomBytes:RandomBytes": random_bytes,
    "random:index/randomPassword:RandomPassword": random_password,
}
