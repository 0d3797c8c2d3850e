"""TLS everywhere OpenBao listens, joins, is probed, and in the keys and certs it serves.

OpenBao silently does the insecure thing in several places: ``tls_disable`` turns the
listener to plaintext, an empty ``tls_cert_file`` turns on ACME, ``retry_join`` over http
sends the join challenge in the clear, and a probe or client with skip-verify accepts any
certificate. These rules read the JSON server config wherever it is stored (ConfigMap,
Secret, ``BAO_LOCAL_CONFIG``) and the pulumi-tls resources that issue the certificates.
"""

from __future__ import annotations

import re
from typing import Iterator, Mapping

from ._k8s import (
    K8sObject,
    WORKLOAD_KINDS,
    as_int,
    as_list,
    as_str_list,
    containers,
    fmt,
    get_path,
    hcl_configs,
    is_openbao_pod,
    openbao_configs,
    pod_template,
    stanzas,
    truthy,
)
from ._rules import Config, resource_rule

TLS_VERSIONS = ("tls10", "tls11", "tls12", "tls13")
#: Kinds that may carry the server config.
CONFIG_KINDS = ("ConfigMap", "Secret", *sorted(WORKLOAD_KINDS))

LISTENER_CONFIG = {
    "minTlsVersion": {
        "type": "string", "enum": ["tls12", "tls13"], "default": "tls12",
        "description": "Lowest tls_min_version a listener may allow (OpenBao's own default is tls12).",
    },
}


def check_listener(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Every TCP listener serves TLS with a named cert and key at the minimum version."""
    minimum = cfg["minTlsVersion"]
    for where in hcl_configs(obj):
        yield (f"{obj.ref}: {where} holds OpenBao config as HCL, which this policy pack cannot verify. "
               f"Fix: store the server config as JSON (OpenBao reads JSON natively), e.g. under data key server.json.")
    for doc in openbao_configs(obj):
        for key in ("api_addr", "cluster_addr"):
            addr = doc.config.get(key)
            if isinstance(addr, str) and addr and not addr.startswith("https://"):
                yield (f"{obj.ref}: {doc.where} {key} is {fmt(addr)}; clients and peers would be sent to a "
                       f"plaintext address. Fix: use an https:// address.")
        for i, (kind, listener) in enumerate(stanzas(doc.config.get("listener"))):
            if kind != "tcp":
                continue
            field = f"{doc.where} listener[{i}].tcp"
            if truthy(listener.get("tls_disable")):
                yield (f"{obj.ref}: {field}.tls_disable is {fmt(listener.get('tls_disable'))}; the API would "
                       f"serve plaintext. Fix: remove tls_disable and set tls_cert_file and tls_key_file.")
            for key in ("tls_cert_file", "tls_key_file"):
                value = listener.get(key)
                if not isinstance(value, str) or not value.strip():
                    yield (f"{obj.ref}: {field}.{key} is {'missing' if value is None else fmt(value)}; "
                           f"an empty tls_cert_file turns on ACME and no key means no TLS. "
                           f"Fix: set {key} to the mounted file, e.g. "
                           f"/openbao/tls/{'tls.crt' if 'cert' in key else 'tls.key'}.")
            version = listener.get("tls_min_version", "tls12")
            if version not in TLS_VERSIONS or TLS_VERSIONS.index(version) < TLS_VERSIONS.index(minimum):
                yield (f"{obj.ref}: {field}.tls_min_version is {fmt(version)}, below the required {minimum}. "
                       f"Fix: set tls_min_version to {fmt(minimum)} or higher.")


def check_raft_join(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Raft retry_join reaches the leader over https and verifies it against a CA."""
    for doc in openbao_configs(obj):
        for kind, storage in stanzas(doc.config.get("storage")):
            if kind != "raft":
                continue
            for i, join in enumerate(as_list(storage.get("retry_join"))):
                if not isinstance(join, Mapping):
                    continue
                field = f"{doc.where} storage.raft.retry_join[{i}]"
                addr = join.get("leader_api_addr")
                if isinstance(addr, str) and not addr.startswith("https://"):
                    yield (f"{obj.ref}: {field}.leader_api_addr is {fmt(addr)}; the join challenge would cross "
                           f"the network unencrypted. Fix: use https://<pod>.<headless-svc>.<ns>.svc:8200.")
                if join.get("auto_join") is not None and join.get("auto_join_scheme", "https") != "https":
                    yield (f"{obj.ref}: {field}.auto_join_scheme is {fmt(join.get('auto_join_scheme'))}. "
                           f"Fix: set auto_join_scheme to \"https\".")
                ca = join.get("leader_ca_cert_file") or join.get("leader_ca_cert")
                if not isinstance(ca, str) or not ca.strip():
                    yield (f"{obj.ref}: {field} names no CA (leader_ca_cert_file), so the leader's certificate "
                           f"is not verified against the cluster CA. Fix: set leader_ca_cert_file to the mounted "
                           f"ca.crt, e.g. /openbao/tls/ca.crt.")


#: Flags and variables that turn certificate verification off in bao/vault/curl/wget.
_SKIP_VERIFY_ARGS = re.compile(
    r"(^|\s)(-tls-skip-verify|--tls-skip-verify|-k|--insecure|--no-check-certificate)(=\S*)?(\s|$)")
_SKIP_VERIFY_ENV = ("BAO_SKIP_VERIFY", "VAULT_SKIP_VERIFY")
_ADDR_ENV = ("BAO_ADDR", "VAULT_ADDR")


def check_probes(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """OpenBao probes use HTTPS; no container talks to OpenBao without verifying TLS."""
    pod = pod_template(obj)
    if pod is None:
        return
    openbao = is_openbao_pod(obj, pod)
    for c in containers(pod):
        for env in as_list(c.body.get("env")):
            name = get_path(env, "name")
            if name not in _SKIP_VERIFY_ENV and name not in _ADDR_ENV:
                continue  # read no other value: it may be unknown during preview
            value = get_path(env, "value")
            if name in _SKIP_VERIFY_ENV and truthy(value):
                yield (f"{obj.ref}: {c.path}.env[{name}] is {fmt(value)}; the client accepts any certificate. "
                       f"Fix: remove it and set BAO_CACERT to the mounted CA file.")
            if name in _ADDR_ENV and isinstance(value, str) and value.startswith("http://"):
                yield (f"{obj.ref}: {c.path}.env[{name}] is {fmt(value)}. "
                       f"Fix: use an https:// address with BAO_CACERT.")
        if not openbao:
            continue
        for probe_name in ("startupProbe", "readinessProbe", "livenessProbe"):
            probe = c.body.get(probe_name)
            if not isinstance(probe, Mapping):
                continue
            field = f"{c.path}.{probe_name}"
            http = probe.get("httpGet")
            if isinstance(http, Mapping) and http.get("scheme", "HTTP") != "HTTPS":
                yield (f"{obj.ref}: {field}.httpGet.scheme is {fmt(http.get('scheme', 'HTTP'))}; the listener "
                       f"only speaks TLS. Fix: set scheme: HTTPS (or an exec probe that verifies the CA).")
            command = " ".join(as_str_list(get_path(probe, "exec", "command")))
            if "http://" in command:
                yield (f"{obj.ref}: {field}.exec.command calls an http:// URL. Fix: use https:// with the CA file.")
            if _SKIP_VERIFY_ARGS.search(command) or any(v in command for v in _SKIP_VERIFY_ENV):
                yield (f"{obj.ref}: {field}.exec.command skips certificate verification. "
                       f"Fix: pass the CA (BAO_CACERT / --cacert) instead of skipping verification.")


KEY_CONFIG = {
    "minRsaBits": {
        "type": "integer", "default": 3072, "minimum": 2048,
        "description": "Smallest RSA modulus accepted for tls:PrivateKey (NIST: 3072 beyond 2030).",
    },
    "allowedEcdsaCurves": {
        "type": "array", "items": {"type": "string"}, "default": ["P256", "P384", "P521"],
        "description": "ECDSA curves accepted for tls:PrivateKey (P224 is below 128-bit strength).",
    },
}


def check_key_strength(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Keys are RSA >= minRsaBits, ECDSA on an allowed curve, or ED25519."""
    algorithm = obj.props.get("algorithm")
    ref = f"tls:PrivateKey {obj.name}"
    if algorithm == "RSA":
        bits = as_int(obj.props.get("rsaBits")) or 2048  # the provider's default
        if bits < cfg["minRsaBits"]:
            yield (f"{ref}: rsaBits is {bits} (the provider default is 2048), below {cfg['minRsaBits']}. "
                   f"Fix: set rsa_bits={cfg['minRsaBits']} or more, or use ECDSA P256.")
    elif algorithm == "ECDSA":
        curve = obj.props.get("ecdsaCurve", "P224")  # the provider's default
        if curve not in cfg["allowedEcdsaCurves"]:
            yield (f"{ref}: ecdsaCurve is {fmt(curve)} (the provider default is P224), not one of "
                   f"{', '.join(cfg['allowedEcdsaCurves'])}. Fix: set ecdsa_curve=\"P256\" or stronger.")
    elif algorithm != "ED25519":
        yield f"{ref}: algorithm is {fmt(algorithm)}. Fix: use ECDSA (P256+), ED25519 or RSA >= {cfg['minRsaBits']}."


CERT_CONFIG = {
    "maxCaValidityHours": {
        "type": "integer", "default": 87600, "minimum": 1,
        "description": "Longest validity of a CA certificate (isCaCertificate true), in hours (10 years).",
    },
    "maxLeafValidityHours": {
        "type": "integer", "default": 9528, "minimum": 1,
        "description": "Longest validity of a leaf certificate, in hours (397 days, what clients accept).",
    },
}


def check_cert_validity(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Certificates are short-lived enough and renew early (earlyRenewalHours > 0)."""
    kind = "SelfSignedCert" if "selfSignedCert" in obj.resource_type else "LocallySignedCert"
    ref = f"tls:{kind} {obj.name}"
    is_ca = truthy(obj.props.get("isCaCertificate"))
    limit_key = "maxCaValidityHours" if is_ca else "maxLeafValidityHours"
    limit = cfg[limit_key]
    validity = as_int(obj.props.get("validityPeriodHours"))
    if validity is None or validity > limit:
        yield (f"{ref}: validityPeriodHours is {fmt(obj.props.get('validityPeriodHours'))}, above the "
               f"{'CA' if is_ca else 'leaf'} maximum of {limit} ({limit_key}). "
               f"Fix: set validity_period_hours <= {limit}.")
    early = as_int(obj.props.get("earlyRenewalHours")) or 0
    if early <= 0:
        yield (f"{ref}: earlyRenewalHours is {early}, so the certificate is only replaced after it has expired. "
               f"Fix: set early_renewal_hours > 0, e.g. a third of the validity.")
    elif validity is not None and early >= validity:
        yield (f"{ref}: earlyRenewalHours ({early}) is not below validityPeriodHours ({validity}); every "
               f"`pulumi up` would re-issue it. Fix: use a window shorter than the validity.")


POLICIES = [
    resource_rule(
        "openbao-listener-tls",
        "OpenBao TCP listeners serve TLS: tls_disable never set, tls_cert_file and tls_key_file named "
        "(empty cert turns on ACME), tls_min_version >= minTlsVersion, https api_addr/cluster_addr.",
        "critical", CONFIG_KINDS, check_listener, LISTENER_CONFIG),
    resource_rule(
        "openbao-raft-join-tls",
        "Raft retry_join reaches the leader over https and verifies it with leader_ca_cert_file.",
        "high", CONFIG_KINDS, check_raft_join),
    resource_rule(
        "openbao-probes-https",
        "OpenBao probes use HTTPS, and no container talks to OpenBao with certificate verification off.",
        "medium", WORKLOAD_KINDS, check_probes),
    resource_rule(
        "tls-key-strength",
        "pulumi-tls private keys are RSA >= minRsaBits, ECDSA on an allowed curve (P256+) or ED25519.",
        "medium", (), check_key_strength, KEY_CONFIG, resource_types=("tls:index/privateKey:PrivateKey",)),
    resource_rule(
        "tls-cert-validity",
        "pulumi-tls certificates stay within the maximum validity (CA and leaf apart) and renew early "
        "(0 < earlyRenewalHours < validityPeriodHours).",
        "medium", (), check_cert_validity, CERT_CONFIG,
        resource_types=("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert")),
]
