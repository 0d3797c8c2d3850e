"""OpenBaoMonitoring: scrape config and the alerts operators need."""

from __future__ import annotations

import datetime as dt

import pytest
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
    assert 'job_name=~"openbao-backup-.*"' in rules["OpenBaoBackupFailing"]["expr"]
    assert 'cronjob="openbao-backup"' in rules["OpenBaoBackupStale"]["expr"]
    for r in rules.values():
        assert r["labels"]["severity"] in ("warning", "critical") and r["annotations"]["runbook"].startswith("docs/")


def test_certificate_alert_fires_at_the_renewal_window(prod_run: ProgramRun) -> None:
    s = parse_settings(stack_config("prod"), "prod")
    cert = x509.load_pem_x509_certificate(prod_run.object("Secret", "openbao-tls")["stringData"]["tls.crt"].encode())
    expected = int((cert.not_valid_after_utc - dt.timedelta(hours=s.pki.early_renewal_hours)).timestamp())
    rules = {r["alert"]: r for r in prod_run.object("PrometheusRule", "openbao")["spec"]["groups"][0]["rules"]}
    # vector(): a bare `time() > N` compares two scalars, which PromQL refuses (tests/test_alert_rules.py)
    assert rules["OpenBaoCertificateRenewalDue"]["expr"] == f"vector(time()) > {expected}"
    assert rules["OpenBaoCertificateExpired"]["expr"] == f"vector(time()) > {int(cert.not_valid_after_utc.timestamp())}"


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
    assert rules["OpenBaoCertificateRenewalDue"] == f"vector(time()) > {due}"
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
                                "releaseLabel", "backupSchedule", "drillSchedule", "serverCertExpiryTime"}
    assert all(p.description for p in comp.inputs.values())
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"name", "namespace", "caSecretName",
                                                                      "serverCertRenewalTime"}
    assert set(comp.outputs) == {"ruleName"} and all(p.description for p in comp.outputs.values())


def test_renewal_time_is_not_after_minus_the_window() -> None:
    from openbao_platform.monitoring import renewal_time

    assert renewal_time("2030-01-31T12:00:00Z", 720) == "2030-01-01T12:00:00Z"


# --- Full volumes (docs/runbook-full-volumes.md, tests/e2e/test_fault_volumes.py) ------------


def _rules(run: ProgramRun) -> dict[str, dict]:
    return {r["alert"]: r for r in run.object("PrometheusRule", "openbao")["spec"]["groups"][0]["rules"]}


def test_volume_alerts_watch_exactly_the_statefulsets_claims(prod_run: ProgramRun) -> None:
    """A selector that misses a PVC name is an alert that never fires: derive the names the
    kubelet reports (<claim template>-<StatefulSet>-<ordinal>) from the rendered StatefulSet."""
    import re

    sts = prod_run.object("StatefulSet", "openbao")
    claims = [c["metadata"]["name"] for c in sts["spec"]["volumeClaimTemplates"]]
    assert sorted(claims) == ["audit", "data"]
    pvcs = [f"{c}-openbao-{i}" for c in claims for i in range(int(sts["spec"]["replicas"]))]
    rules = _rules(prod_run)
    for name in ("OpenBaoVolumeFillingUp", "OpenBaoVolumeNearlyFull"):
        expr = rules[name]["expr"]
        selectors = set(re.findall(r'persistentvolumeclaim=~"([^"]+)"', expr))
        assert len(selectors) == 1, expr
        pattern = re.compile(selectors.pop())  # Prometheus anchors =~ at both ends
        assert all(pattern.fullmatch(p) for p in pvcs), (pattern.pattern, pvcs)
        assert not any(pattern.fullmatch(p) for p in ("openbao-backup", "data-other-0", "tmp-openbao-0")), pattern
        assert expr.count('namespace="openbao"') == expr.count("kubelet_volume_stats_"), expr
        assert rules[name]["annotations"]["runbook"] == "docs/runbook-full-volumes.md"


def test_volume_alerts_fire_well_before_full(prod_run: ProgramRun) -> None:
    """Warn at 75% used (or a 4-day fill forecast), page at 90%: with an audit device alone a
    full volume refuses every request, and a full data volume drops its node out of Raft."""
    rules = _rules(prod_run)
    warn, page = rules["OpenBaoVolumeFillingUp"], rules["OpenBaoVolumeNearlyFull"]
    assert warn["labels"]["severity"] == "warning" and page["labels"]["severity"] == "critical"
    assert "< 0.25" in warn["expr"] and "predict_linear(" in warn["expr"] and "4 * 86400" in warn["expr"]
    assert page["expr"].endswith("< 0.1")
    assert "kubelet_volume_stats_available_bytes" in page["expr"] and "kubelet_volume_stats_capacity_bytes" in page["expr"]


def test_audit_blocked_alert_uses_the_metric_openbao_exports(prod_run: ProgramRun) -> None:
    """The counter the e2e reads from a real node while no audit device can write."""
    rule = _rules(prod_run)["OpenBaoAuditBlocked"]
    assert "increase(vault_audit_log_request_failure{namespace=\"openbao\"}[5m]) > 0" in rule["expr"]
    assert rule["labels"]["severity"] == "critical" and rule["annotations"]["runbook"] == "docs/runbook-full-volumes.md"


# --- Backup freshness: thresholds derived from the schedules (promtool proves they fire:
#     tests/test_alert_rules.py) ------------------------------------------------------------


def test_stale_threshold_is_the_schedules_longest_gap_plus_the_grace() -> None:
    from openbao_platform.monitoring import FRESHNESS_GRACE_SECONDS, MonitoringSpec, freshness_rules

    def rules(**kw):
        spec = MonitoringSpec(name="openbao", namespace="openbao", **kw)
        return freshness_rules(spec, lambda name, expr, *rest: {"alert": name, "expr": expr})

    assert rules() == []  # no backups: nothing to be stale
    (daily,) = rules(backup_schedule="0 2 * * *")
    assert f"> {86400 + FRESHNESS_GRACE_SECONDS}" in daily["expr"] and "backup-drill" not in daily["expr"]
    (weekly,) = rules(backup_schedule="0 3 * * 1", drill_schedule="30 */6 * * *")
    assert f'cronjob="openbao-backup"}}) > {7 * 86400 + FRESHNESS_GRACE_SECONDS}' in weekly["expr"]
    assert f'cronjob="openbao-backup-drill"}}) > {6 * 3600 + FRESHNESS_GRACE_SECONDS}' in weekly["expr"]
    # never succeeded yet: kube_cronjob_created stands in for the missing last-success time
    assert "kube_cronjob_created" in weekly["expr"] and "unless on(namespace, cronjob)" in weekly["expr"]


def test_the_stack_passes_its_schedules(prod_run: ProgramRun) -> None:
    s = parse_settings(stack_config("prod"), "prod")
    rules = {r["alert"]: r for r in prod_run.object("PrometheusRule", "openbao")["spec"]["groups"][0]["rules"]}
    from openbao_platform.cron import longest_interval
    from openbao_platform.monitoring import FRESHNESS_GRACE_SECONDS

    limit = longest_interval(s.backup.schedule) + FRESHNESS_GRACE_SECONDS
    assert f'cronjob="openbao-backup"}}) > {limit}' in rules["OpenBaoBackupStale"]["expr"]
    assert "> 86400" not in rules["OpenBaoBackupFailing"]["expr"]  # staleness moved to OpenBaoBackupStale


def test_bad_schedules_are_refused_naming_the_arg() -> None:
    from openbao_platform.monitoring import OpenBaoMonitoring
    from openbao_platform.settings import ArgsError
    from tests.support.component import run_components

    errors: list[str] = []

    def build() -> None:
        with pytest.raises(ArgsError) as err:
            OpenBaoMonitoring("m", {"name": "openbao", "namespace": "openbao", "ca_secret_name": "ca",
                                    "server_cert_renewal_time": "2030-01-01T00:00:00Z",
                                    "server_cert_expiry_time": "tomorrow",
                                    "backup_schedule": "daily", "drill_schedule": "61 * * * *"})
        errors.append(str(err.value))
        with pytest.raises(ArgsError) as err:
            OpenBaoMonitoring("m", {"name": "openbao", "namespace": "openbao", "ca_secret_name": "ca",
                                    "server_cert_renewal_time": "2030-01-01T00:00:00Z",
                                    "drill_schedule": "30 */6 * * *"})
        errors.append(str(err.value))

    run = run_components(build)
    assert run.registrations == []
    assert 'OpenBaoMonitoringArgs.backup_schedule = "daily": is not a five-field cron expression' in errors[0]
    assert 'OpenBaoMonitoringArgs.server_cert_expiry_time = "tomorrow": is not an RFC 3339 UTC time' in errors[0]
    assert 'OpenBaoMonitoringArgs.drill_schedule = "61 * * * *": is not a five-field cron expression' in errors[0]
    assert "OpenBaoMonitoringArgs.drill_schedule" in errors[1] and "needs the backup schedule too" in errors[1]

