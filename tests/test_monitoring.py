"""OpenBaoMonitoring: scrape config and the alerts operators need."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from openbao_platform.monitoring import renewal_epoch
from openbao_platform.settings import parse_settings
from tests.support.program import ProgramRun, stack_config


def test_service_monitor_scrapes_over_verified_tls(prod_run: ProgramRun) -> None:
    sm = prod_run.object("ServiceMonitor", "openbao")
    assert sm["apiVersion"] == "monitoring.coreos.com/v1" and sm["metadata"]["labels"]["release"] == "prometheus"
    (ep,) = sm["spec"]["endpoints"]
    assert ep["scheme"] == "https" and ep["path"] == "/v1/sys/metrics" and ep["params"] == {"format": ["prometheus"]}
    assert ep["tlsConfig"]["ca"]["secret"] == {"name": "openbao-ca", "key": "ca.crt"}
    assert ep["tlsConfig"]["serverName"] == "openbao-internal.openbao.svc"
    assert "insecureSkipVerify" not in ep["tlsConfig"]
    assert sm["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "peers"
    # the selected Service publishes not-ready pods, so a sealed node stays a target
    assert prod_run.object("Service", "openbao-internal")["spec"]["publishNotReadyAddresses"] is True


def test_required_alerts(prod_run: ProgramRun) -> None:
    rules = {r["alert"]: r for r in prod_run.object("PrometheusRule", "openbao")["spec"]["groups"][0]["rules"]}
    assert set(rules) >= {"OpenBaoSealed", "OpenBaoNoActiveLeader", "OpenBaoQuorumAtRisk", "OpenBaoBackupFailing",
                          "OpenBaoCertificateRenewalDue"}
    assert "vault_core_unsealed" in rules["OpenBaoSealed"]["expr"]
    assert "vault_core_active" in rules["OpenBaoNoActiveLeader"]["expr"]
    assert "vault_autopilot_failure_tolerance" in rules["OpenBaoQuorumAtRisk"]["expr"]
    assert "< 2" in rules["OpenBaoQuorumAtRisk"]["expr"]  # 5 voters tolerate 2 failures
    assert 'cronjob="openbao-backup"' in rules["OpenBaoBackupFailing"]["expr"]
    for r in rules.values():
        assert r["labels"]["severity"] in ("warning", "critical") and r["annotations"]["runbook"].startswith("docs/")


def test_certificate_alert_fires_at_the_renewal_window(prod_run: ProgramRun) -> None:
    s = parse_settings(stack_config("prod"), "prod")
    cert = x509.load_pem_x509_certificate(prod_run.object("Secret", "openbao-tls")["stringData"]["tls.crt"].encode())
    expected = int((cert.not_valid_after_utc - dt.timedelta(hours=s.pki.early_renewal_hours)).timestamp())
    rules = {r["alert"]: r for r in prod_run.object("PrometheusRule", "openbao")["spec"]["groups"][0]["rules"]}
    assert rules["OpenBaoCertificateRenewalDue"]["expr"] == f"time() > {expected}"


def test_renewal_epoch() -> None:
    assert renewal_epoch("2030-01-02T00:00:00Z", 24) == int(dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp())


def test_monitoring_off_in_dev(dev_run: ProgramRun) -> None:
    assert not [r for r in dev_run.registrations if r.type.startswith("kubernetes:monitoring.coreos.com")]


# --- OpenBaoMonitoring as a reusable component: narrow args, validated, analyzable -----------


def test_monitoring_stands_alone_without_stack_settings() -> None:
    """Scrape and alert on another team's 5-voter cluster "vault" in "secrets"."""
    from openbao_platform.monitoring import OpenBaoMonitoring
    from tests.support.component import run_components

    run = run_components(lambda: OpenBaoMonitoring("vault-mon", {
        "name": "vault", "namespace": "secrets", "ca_secret_name": "vault-ca",
        "server_cert_renewal_time": "2030-01-01T00:00:00Z", "replicas": 5, "release_label": "kube-prometheus"}))
    assert {r.name for r in run.kubernetes_objects()} == {"vault-mon-servicemonitor", "vault-mon-prometheusrule"}
    sm = run.object("ServiceMonitor", "vault")
    assert sm["metadata"]["namespace"] == "secrets" and sm["metadata"]["labels"]["release"] == "kube-prometheus"
    assert sm["spec"]["namespaceSelector"] == {"matchNames": ["secrets"]}
    (ep,) = sm["spec"]["endpoints"]
    assert ep["tlsConfig"] == {"ca": {"secret": {"name": "vault-ca", "key": "ca.crt"}},
                               "serverName": "vault-internal.secrets.svc"}
    rules = {r["alert"]: r["expr"] for r in run.object("PrometheusRule", "vault")["spec"]["groups"][0]["rules"]}
    due = int(dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc).timestamp())
    assert rules["OpenBaoCertificateRenewalDue"] == f"time() > {due}"
    assert "< 2" in rules["OpenBaoQuorumAtRisk"] and 'cronjob="vault-backup"' in rules["OpenBaoBackupFailing"]


def test_monitoring_rejects_bad_args_before_creating_anything() -> None:
    import pytest

    from openbao_platform.monitoring import OpenBaoMonitoring
    from openbao_platform.settings import ArgsError
    from tests.support.component import run_components

    errors: list[str] = []

    def build() -> None:
        with pytest.raises(ArgsError) as err:
            OpenBaoMonitoring("vault-mon", {"name": "vault", "namespace": "secrets", "ca_secret_name": "vault-ca",
                                            "server_cert_renewal_time": "next week", "replicas": 4,
                                            "release_label": "kube prometheus"})
        errors.append(str(err.value))

    run = run_components(build)
    assert run.registrations == []  # validated before the component registers
    (text,) = errors
    assert "OpenBaoMonitoringArgs.server_cert_renewal_time = \"next week\": is not an RFC 3339 UTC time. Fix:" in text
    assert "OpenBaoMonitoringArgs.replicas = 4: is even" in text and "Fix: use 3 or 5." in text
    assert "OpenBaoMonitoringArgs.release_label = \"kube prometheus\": is not a valid label value. " \
           "Fix: use e.g. prometheus." in text


def test_monitoring_schema_describes_every_input() -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    from openbao_platform.monitoring import OpenBaoMonitoring

    (comp,) = Analyzer("openbao-platform").analyze([OpenBaoMonitoring])["component_definitions"].values()
    assert set(comp.inputs) == {"name", "namespace", "caSecretName", "serverCertRenewalTime", "replicas",
                                "releaseLabel"}
    assert all(p.description for p in comp.inputs.values())
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"name", "namespace", "caSecretName",
                                                                      "serverCertRenewalTime"}
    assert set(comp.outputs) == {"ruleName"} and all(p.description for p in comp.outputs.values())


def test_renewal_time_is_not_after_minus_the_window() -> None:
    from openbao_platform.monitoring import renewal_time

    assert renewal_time("2030-01-31T12:00:00Z", 720) == "2030-01-01T12:00:00Z"
