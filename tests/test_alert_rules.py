"""The alert rules under Prometheus' own rule engine: `promtool check rules` on the rendered
PrometheusRule, and `promtool test rules` feeding the series kube-state-metrics exports for
the backup and drill CronJobs, so "the freshness alert fires when the last verified snapshot
is older than the schedule allows" is evaluated by the real engine, not re-implemented here.
tools/test.sh installs promtool (tools/ci/promtool.sh).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from openbao_platform.cron import longest_interval
from openbao_platform.monitoring import FRESHNESS_GRACE_SECONDS, MonitoringSpec, alert_rules
from tests.support.program import ProgramRun

NS = "openbao"
BACKUP = "0 */6 * * *"  # the prod stack's backup.schedule
DRILL = "30 */6 * * *"  # backup.drill.schedule's default


def promtool() -> str:
    found = shutil.which("promtool") or str(Path(__file__).resolve().parents[1] / ".venv/bin/promtool")
    if not Path(found).exists():
        pytest.fail("promtool is missing: run `bash tools/ci/promtool.sh --install` (tools/test.sh does)")
    return found


def _rules_file(tmp_path: Path, rules: list[dict[str, Any]]) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "openbao", "rules": rules}]}))
    return path


def _run_tests(tmp_path: Path, rules: list[dict[str, Any]], tests: list[dict[str, Any]]) -> None:
    _rules_file(tmp_path, rules)
    unit = tmp_path / "tests.yaml"
    unit.write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}))
    done = subprocess.run([promtool(), "test", "rules", str(unit)], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def _spec(**kw: Any) -> list[dict[str, Any]]:
    return alert_rules(MonitoringSpec(name="openbao", namespace=NS, **kw), renew_at=4102444800)


def _series(name: str, values: str, **labels: str) -> dict[str, str]:
    sel = ", ".join(f'{k}="{v}"' for k, v in {"namespace": NS, **labels}.items())
    return {"series": f"{name}{{{sel}}}", "values": values}


def _firing(rules: list[dict[str, Any]], alert: str, **labels: str) -> dict[str, Any]:
    rule = next(r for r in rules if r["alert"] == alert)
    return {"exp_labels": {**rule["labels"], "namespace": NS, **labels}, "exp_annotations": rule["annotations"]}


def _minutes(seconds: int) -> int:
    return seconds // 60


def test_rendered_rules_pass_promtool_check(prod_run: ProgramRun, tmp_path: Path) -> None:
    groups = prod_run.object("PrometheusRule", "openbao")["spec"]["groups"]
    path = tmp_path / "rendered.yaml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    done = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_backup_stale_fires_only_after_the_schedule_allows(tmp_path: Path) -> None:
    """Last success at t=0 and never again: quiet until the longest gap plus the grace, firing
    after it (and its `for`); a CronJob that never succeeded fires the same way."""
    rules = _spec(backup_schedule=BACKUP)
    limit = _minutes(longest_interval(BACKUP) + FRESHNESS_GRACE_SECONDS)  # 7 h
    span = f"0x{limit + 30}"
    stale = _firing(rules, "OpenBaoBackupStale", cronjob="openbao-backup")
    _run_tests(tmp_path, rules, [
        {"interval": "1m",
         "input_series": [_series("kube_cronjob_status_last_successful_time", span, cronjob="openbao-backup"),
                          _series("kube_cronjob_created", span, cronjob="openbao-backup")],
         "alert_rule_test": [{"eval_time": f"{limit - 1}m", "alertname": "OpenBaoBackupStale", "exp_alerts": []},
                             {"eval_time": f"{limit + 10}m", "alertname": "OpenBaoBackupStale", "exp_alerts": [stale]}]},
        {"interval": "1m",  # created at t=0, never succeeded: no last-success series at all
         "input_series": [_series("kube_cronjob_created", span, cronjob="openbao-backup")],
         "alert_rule_test": [{"eval_time": f"{limit - 1}m", "alertname": "OpenBaoBackupStale", "exp_alerts": []},
                             {"eval_time": f"{limit + 10}m", "alertname": "OpenBaoBackupStale", "exp_alerts": [stale]}]},
        {"interval": "1m",  # a success every run (the value is the time of the last one): quiet throughout
         "input_series": [_series("kube_cronjob_status_last_successful_time", f"0+60x{limit + 30}",
                                  cronjob="openbao-backup"),
                          _series("kube_cronjob_created", span, cronjob="openbao-backup")],
         "alert_rule_test": [{"eval_time": f"{limit + 10}m", "alertname": "OpenBaoBackupStale", "exp_alerts": []}]},
    ])


def test_a_drill_that_stops_succeeding_makes_the_backups_stale(tmp_path: Path) -> None:
    """Uploads keep succeeding, but nothing has been proven restorable since t=0."""
    rules = _spec(backup_schedule=BACKUP, drill_schedule=DRILL)
    limit = _minutes(longest_interval(DRILL) + FRESHNESS_GRACE_SECONDS)
    span = f"0x{limit + 30}"
    _run_tests(tmp_path, rules, [
        {"interval": "1m",
         "input_series": [
             _series("kube_cronjob_status_last_successful_time", f"0+60x{limit + 30}", cronjob="openbao-backup"),
             _series("kube_cronjob_created", span, cronjob="openbao-backup"),
             _series("kube_cronjob_status_last_successful_time", span, cronjob="openbao-backup-drill"),
             _series("kube_cronjob_created", span, cronjob="openbao-backup-drill")],
         "alert_rule_test": [
             {"eval_time": f"{limit - 1}m", "alertname": "OpenBaoBackupStale", "exp_alerts": []},
             {"eval_time": f"{limit + 10}m", "alertname": "OpenBaoBackupStale",
              "exp_alerts": [_firing(rules, "OpenBaoBackupStale", cronjob="openbao-backup-drill")]}]},
    ])


def test_a_failed_upload_or_drill_job_fires_backup_failing(tmp_path: Path) -> None:
    """The upload failing (bucket unreachable) fails the Job: kube_job_status_failed = 1."""
    rules = _spec(backup_schedule=BACKUP, drill_schedule=DRILL)
    _run_tests(tmp_path, rules, [
        {"interval": "1m",
         "input_series": [_series("kube_job_status_failed", "0 0 1x30", job_name="openbao-backup-29412000"),
                          _series("kube_job_status_failed", "0x32", job_name="openbao-backup-drill-29412030"),
                          _series("kube_job_status_failed", "1x32", job_name="grafana-backup-1")],
         "alert_rule_test": [
             {"eval_time": "5m", "alertname": "OpenBaoBackupFailing", "exp_alerts": []},
             {"eval_time": "15m", "alertname": "OpenBaoBackupFailing",
              "exp_alerts": [_firing(rules, "OpenBaoBackupFailing", job_name="openbao-backup-29412000")]}]},
    ])


@pytest.mark.parametrize("alert,quiet,firing", [
    # `time() > N` alone compares two scalars, which PromQL refuses (the whole rule group would
    # not load): the rules compare vector(time()). The window opens at 1 h; `for` is 1 h.
    ("OpenBaoCertificateRenewalDue", "90m", "150m"),
    # expiry at 2 h: scrapes fail TLS from then on, so the leader and node alerts fire too, and
    # this one says what it really is (docs/runbook-certificate-rotation.md)
    ("OpenBaoCertificateExpired", "119m", "121m"),
])
def test_certificate_alerts_fire_at_their_times(tmp_path: Path, alert: str, quiet: str, firing: str) -> None:
    rules = alert_rules(MonitoringSpec(name="openbao", namespace=NS), renew_at=3600, expires_at=7200)
    rule = next(r for r in rules if r["alert"] == alert)
    assert rule["annotations"]["runbook"] == "docs/runbook-certificate-rotation.md"
    _run_tests(tmp_path, rules, [
        {"interval": "1m", "input_series": [],
         "alert_rule_test": [
             {"eval_time": quiet, "alertname": alert, "exp_alerts": []},
             {"eval_time": firing, "alertname": alert,
              "exp_alerts": [{"exp_labels": rule["labels"], "exp_annotations": rule["annotations"]}]}]},
    ])


def test_volume_alerts_fire_before_full_and_audit_failures_page(tmp_path: Path) -> None:
    """Free space as the kubelet reports it per claim: under 25% warns (15 m), under 10% pages
    (5 m), a comfortable volume stays quiet; a failed audit write pages within minutes."""
    rules = _spec()
    gib = 1024 ** 3

    def volume(pvc: str, free_fraction: float) -> list[dict[str, str]]:
        return [_series("kubelet_volume_stats_capacity_bytes", f"{10 * gib}x40", persistentvolumeclaim=pvc),
                _series("kubelet_volume_stats_available_bytes", f"{int(free_fraction * 10 * gib)}x40",
                        persistentvolumeclaim=pvc)]

    _run_tests(tmp_path, rules, [
        {"interval": "1m",
         "input_series": volume("data-openbao-0", 0.05) + volume("audit-openbao-1", 0.2)
         + volume("data-openbao-2", 0.6) + volume("data-grafana-0", 0.01),
         "alert_rule_test": [
             {"eval_time": "10m", "alertname": "OpenBaoVolumeNearlyFull",
              "exp_alerts": [_firing(rules, "OpenBaoVolumeNearlyFull", persistentvolumeclaim="data-openbao-0")]},
             {"eval_time": "20m", "alertname": "OpenBaoVolumeFillingUp",
              "exp_alerts": [_firing(rules, "OpenBaoVolumeFillingUp", persistentvolumeclaim="audit-openbao-1"),
                             _firing(rules, "OpenBaoVolumeFillingUp", persistentvolumeclaim="data-openbao-0")]}]},
        {"interval": "1m",
         "input_series": [_series("vault_audit_log_request_failure", "0 0 0 1 2 3 4 5 6 7 8 9 10 11 12",
                                  pod="openbao-0")],
         "alert_rule_test": [
             {"eval_time": "2m", "alertname": "OpenBaoAuditBlocked", "exp_alerts": []},
             {"eval_time": "6m", "alertname": "OpenBaoAuditBlocked",
              "exp_alerts": [_firing(rules, "OpenBaoAuditBlocked", pod="openbao-0")]}]},
    ])
