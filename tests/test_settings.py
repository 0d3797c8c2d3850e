"""Settings: secure defaults, every validation rule, and that all problems come together."""

from __future__ import annotations

from typing import Any

import pytest

from openbao_platform.settings import (
    DEFAULT_IMAGE_TAG,
    PROJECT,
    SettingsError,
    parse_settings,
    raw_from_config_map,
)
from tests.support.program import stack_config

VALID_NGINX = {"mode": "nginx", "host": "bao.example.com", "certManagerIssuer": "letsencrypt"}


def problems(raw: dict[str, Any], stack: str = "test") -> list[str]:
    with pytest.raises(SettingsError) as err:
        parse_settings(raw, stack)
    return err.value.problems


def one_problem(raw: dict[str, Any], key: str, *words: str) -> str:
    found = problems(raw)
    assert len(found) == 1, found
    msg = found[0]
    assert msg.startswith(f"{PROJECT}:{key} = "), msg
    assert "Fix:" in msg
    for w in words:
        assert w in msg, msg
    return msg


def test_defaults_are_secure() -> None:
    s = parse_settings({}, "dev")
    assert s.replicas == 3 and s.replicas % 2 == 1
    assert s.tls_min_version == "tls12"
    assert s.image.tag == DEFAULT_IMAGE_TAG and s.image.tag != "latest"
    assert s.audit.file is True
    assert s.ingress.mode == "none"
    assert s.self_init.enabled and s.backup.enabled
    assert s.pki.server_validity_hours < s.pki.ca_validity_hours
    assert s.pki.early_renewal_hours < s.pki.server_validity_hours
    assert s.network.client_namespaces == ()


@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_stack_files_are_valid(stack: str) -> None:
    s = parse_settings(stack_config(stack), stack)
    assert s.stack == stack


def test_prod_stack_is_production_grade() -> None:
    s = parse_settings(stack_config("prod"), "prod")
    assert s.production and s.replicas >= 3 and len(s.topology.zones) >= 3
    assert s.ingress.mode == "nginx" and s.ingress.host


def test_even_replicas_rejected() -> None:
    one_problem({"replicas": 4}, "replicas", "even", "use 3 or 5")


def test_production_needs_three_replicas() -> None:
    one_problem({"replicas": 1, "production": True}, "replicas", "production", "use 3 or 5")


def test_too_many_replicas() -> None:
    one_problem({"replicas": 9}, "replicas", "more than 7")


def test_replicas_must_be_a_number() -> None:
    one_problem({"replicas": "three"}, "replicas", "must be a whole number")


def test_invalid_namespace() -> None:
    one_problem({"namespace": "Team_Vault"}, "namespace", "DNS-1123")


def test_namespace_too_long() -> None:
    one_problem({"namespace": "a" * 64}, "namespace", "at most 63")


def test_unknown_key_is_reported_not_ignored() -> None:
    one_problem({"replica": 3}, "replica", "not a setting", "replicas")


def test_unknown_nested_key() -> None:
    one_problem({"pki": {"caValidity": 10}}, "pki.caValidity", "caValidityHours")


def test_server_cert_longer_than_ca() -> None:
    one_problem({"pki": {"caValidityHours": 2000, "serverValidityHours": 2160}},
                "pki.serverValidityHours", "outlive its CA")


def test_server_cert_longer_than_397_days() -> None:
    msgs = problems({"pki": {"serverValidityHours": 10000}})
    assert any("397 days" in m for m in msgs)


def test_early_renewal_longer_than_validity() -> None:
    one_problem({"pki": {"earlyRenewalHours": 3000}}, "pki.earlyRenewalHours", "every `pulumi up` would renew")


def test_weak_rsa_and_unknown_curve() -> None:
    msgs = problems({"pki": {"keyAlgorithm": "RSA", "rsaBits": 1024, "ecdsaCurve": "P192"}})
    assert any(m.startswith(f"{PROJECT}:pki.rsaBits") for m in msgs)
    assert any(m.startswith(f"{PROJECT}:pki.ecdsaCurve") for m in msgs)


def test_image_latest_rejected() -> None:
    one_problem({"image": {"tag": "latest"}}, "image.tag", "fixed version")


def test_image_bad_digest() -> None:
    one_problem({"image": {"digest": "sha256:abc"}}, "image.digest", "sha256")


def test_image_digest_accepted_and_pinned() -> None:
    digest = "sha256:" + "a" * 64
    s = parse_settings({"image": {"digest": digest}}, "t")
    assert s.image.reference.endswith(f":{DEFAULT_IMAGE_TAG}@{digest}")


def test_tls_below_12_rejected() -> None:
    one_problem({"tlsMinVersion": "tls10"}, "tlsMinVersion", "tls12 or tls13")


def test_bad_quantity_and_request_over_limit() -> None:
    one_problem({"storage": {"dataSize": "10 GB"}}, "storage.dataSize", "quantity")
    one_problem({"resources": {"memoryRequest": "4Gi", "memoryLimit": "1Gi"}}, "resources.memoryRequest",
                "larger than")


def test_tiny_volume_rejected() -> None:
    one_problem({"storage": {"auditSize": "100Mi"}}, "storage.auditSize", "below 1Gi")


def test_unseal_previous_must_be_older() -> None:
    one_problem({"unseal": {"keyVersion": 2, "previousKeyVersion": 2}}, "unseal.previousKeyVersion", "lower")


def test_unseal_rotation_accepted() -> None:
    s = parse_settings({"unseal": {"keyVersion": 2, "previousKeyVersion": 1}}, "t")
    assert (s.unseal.key_id, s.unseal.previous_key_id) == ("unseal-v2", "unseal-v1")


def test_ingress_needs_host_and_one_tls_source() -> None:
    msgs = problems({"ingress": {"mode": "nginx"}})
    assert any(m.startswith(f"{PROJECT}:ingress.host") for m in msgs)
    assert any(m.startswith(f"{PROJECT}:ingress.tlsSecretName") for m in msgs)
    one_problem({"ingress": {**VALID_NGINX, "tlsSecretName": "x"}}, "ingress.tlsSecretName", "not both")
    assert parse_settings({"ingress": VALID_NGINX}, "t").ingress.host == "bao.example.com"


def test_ingress_unknown_mode() -> None:
    one_problem({"ingress": {"mode": "traefik"}}, "ingress.mode", "nginx, gateway, none")


def test_client_namespace_rules() -> None:
    one_problem({"network": {"clientNamespaces": ["openbao"]}}, "network.clientNamespaces", "OpenBao namespace")
    one_problem({"network": {"clientNamespaces": ["Bad NS"]}}, "network.clientNamespaces", "DNS-1123")


def test_kube_api_cidr_rules() -> None:
    one_problem({"network": {"kubeApiCidrs": ["0.0.0.0/0"]}}, "network.kubeApiCidrs", "every address")
    one_problem({"network": {"kubeApiCidrs": ["10.0.0.300/32"]}}, "network.kubeApiCidrs", "CIDR")
    one_problem({"network": {"kubeApiPort": 70000}}, "network.kubeApiPort", "TCP port")


def test_production_zones_fewer_than_three() -> None:
    one_problem({"production": True, "topology": {"zones": ["a", "b"]}}, "topology.zones", "quorum")


def test_backup_needs_self_init() -> None:
    one_problem({"selfInit": {"enabled": False}}, "backup.enabled", "self-init")


def test_backup_schedule_and_keep() -> None:
    one_problem({"backup": {"schedule": "every hour"}}, "backup.schedule", "cron")
    one_problem({"backup": {"keep": 0}}, "backup.keep", "at least one")


_REMOTE = {"enabled": True, "endpoint": "https://s3.eu-west-1.amazonaws.com", "bucket": "acme-openbao-backups",
           "endpointCidrs": ["52.218.0.0/17"], "credentialsSecretName": "openbao-s3"}


def test_backup_drill_needs_the_bucket_and_its_secret() -> None:
    one_problem({"backup": {"drill": {"enabled": True, "credentialsSecretName": "d"}}},
                "backup.drill.enabled", "needs backup.remote.enabled")
    one_problem({"backup": {"remote": _REMOTE, "drill": {"enabled": True}}},
                "backup.drill.credentialsSecretName", "is required with backup.drill.enabled", "runbook-backup.md")


def test_backup_drill_schedule_secret_name_and_type() -> None:
    one_problem({"backup": {"drill": {"schedule": "every hour"}}}, "backup.drill.schedule", "five-field cron")
    one_problem({"backup": {"drill": {"credentialsSecretName": "Bad Name"}}},
                "backup.drill.credentialsSecretName", "not a valid Kubernetes object name")
    one_problem({"backup": {"drill": {"enabled": "yes"}}}, "backup.drill.enabled", "true or false")
    one_problem({"backup": {"drill": {"color": "blue"}}}, "backup.drill.color", "not a setting")
    one_problem({"backup": {"drill": "on"}}, "backup.drill", "must be an object")
    s = parse_settings({"backup": {"remote": _REMOTE, "drill": {"enabled": True, "credentialsSecretName": "d"}}}, "t")
    assert s.backup.drill.enabled and s.backup.drill.schedule == "30 */6 * * *"
    assert parse_settings({}, "t").backup.drill.enabled is False  # default: nothing new deployed


def test_audit_needs_a_device() -> None:
    one_problem({"audit": {"file": False, "stdout": False}}, "audit.file", "no audit device")


def test_audit_defaults_to_two_devices() -> None:
    """OpenBao refuses every request no device can log: a lone file device makes a full
    audit PVC an outage (tests/e2e/test_fault_volumes.py), so stdout is on unless turned off."""
    a = parse_settings({}, "t").audit
    assert (a.file, a.stdout) == (True, True)
    a = parse_settings({"audit": {"stdout": False}}, "t").audit
    assert (a.file, a.stdout) == (True, False)  # still allowed, explicitly


def test_section_must_be_object() -> None:
    msgs = problems({"pki": "strong"})
    assert any("must be an object" in m for m in msgs)


def test_all_problems_reported_together() -> None:
    err_msgs = problems({"replicas": 2, "namespace": "X", "tlsMinVersion": "tls11", "image": {"tag": "latest"}})
    keys = {m.split(" = ")[0] for m in err_msgs}
    assert keys == {f"{PROJECT}:{k}" for k in ("replicas", "namespace", "tlsMinVersion", "image.tag")}
    with pytest.raises(SettingsError, match="4 problem"):
        parse_settings({"replicas": 2, "namespace": "X", "tlsMinVersion": "tls11", "image": {"tag": "latest"}}, "t")


def test_engine_config_map_is_decoded() -> None:
    raw = raw_from_config_map({
        f"{PROJECT}:replicas": "5",
        f"{PROJECT}:production": "true",
        f"{PROJECT}:namespace": "vault",
        f"{PROJECT}:pki": '{"keyAlgorithm": "RSA"}',
        "kubernetes:context": "ignored",
    })
    assert raw == {"replicas": 5, "production": True, "namespace": "vault", "pki": {"keyAlgorithm": "RSA"}}
    s = parse_settings(raw, "t")
    assert s.replicas == 5 and s.production and s.pki.key_algorithm == "RSA"
