"""OpenBaoMonitoring: scrape config and the alerts operators need."""

from __future__ import annotations

import datetime as dt

from cryptography import x509

from components.monitoring import renewal_epoch
from components.settings import parse_settings
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
