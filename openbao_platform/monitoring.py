"""OpenBaoMonitoring: a ServiceMonitor and a PrometheusRule (Prometheus Operator CRDs).

Scrapes go to the headless Service (it publishes not-ready pods, so a sealed node is still
a target) over TLS verified with our CA. Metrics are unauthenticated at the listener and
restricted by NetworkPolicy to the Prometheus pods: a scrape token would be one more
standing credential to rotate and leak, and metrics carry no secrets.

OpenBao exports no certificate-expiry metric, so the expiry alert embeds the time the
server certificate enters its renewal window (``server_cert_renewal_time``: the platform
derives it from pulumi-tls' notAfter, see ``renewal_time``; a cert-manager Certificate has it
as ``status.renewalTime``); each ``pulumi up`` that renews the certificate moves it.

The component takes only what the objects consume (``OpenBaoMonitoringArgs``), never the
stack settings; the args are validated with the stack config's rules into a
``MonitoringSpec``, which the pure builders below take.
"""


import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from openbao_platform import cluster_manifests as cm
from openbao_platform.cron import is_five_field_cron, longest_interval
from openbao_platform.lifecycle import SKIP_AWAIT
from openbao_platform.naming import NamedCluster
from openbao_platform.settings import ArgsCheck, MonitoringSettings, _parse_replicas, _Reader
from openbao_platform.tokens import token, with_previous_token

Obj = dict[str, Any]

MONITORING_API = "monitoring.coreos.com/v1"
_RFC3339 = "%Y-%m-%dT%H:%M:%SZ"


class OpenBaoMonitoringArgs(TypedDict, total=False):
    """Inputs of OpenBaoMonitoring: the cluster to scrape, its CA, and when its certificate is due."""

    name: Required[str]
    """Name of the OpenBao cluster: scrapes Service ``<name>-internal``; the backup alert watches ``<name>-backup``."""
    namespace: Required[str]
    """Namespace of the cluster; the ServiceMonitor and PrometheusRule live there too."""
    ca_secret_name: Required[pulumi.Input[str]]
    """Secret holding only the CA certificate as ``ca.crt`` (ClusterPki's ca_secret_name): scrapes verify TLS."""
    server_cert_renewal_time: Required[pulumi.Input[str]]
    """When the server cert enters its renewal window (RFC 3339 UTC, 2030-01-01T00:00:00Z): the alert fires then."""
    server_cert_expiry_time: pulumi.Input[str]
    """When the server cert expires (its notAfter, RFC 3339 UTC): OpenBaoCertificateExpired fires then, naming the expired-certificate runbook rather than a restore (scrapes fail TLS too, so the leader and node alerts fire as well). Default none (no such alert)."""
    replicas: int
    """Raft voters the cluster runs (odd, 1-7): the quorum alert's threshold. Default 3."""
    backup_schedule: str
    """Cron schedule of the backup CronJob ``<name>-backup``: OpenBaoBackupStale fires when its last success is older than the longest gap between two runs plus an hour. Default none (a fixed 24 h window in OpenBaoBackupFailing)."""
    drill_schedule: str
    """Cron schedule of the restore drill CronJob ``<name>-backup-drill`` (needs backup_schedule): the last verified snapshot is stale when the drill has not succeeded within its longest gap plus an hour. Default none (no drill)."""
    release_label: str
    """Value of the ``release`` label the Prometheus Operator selects rules and monitors by. Default prometheus."""


@dataclass(frozen=True)
class MonitoringSpec(NamedCluster):
    """Validated OpenBaoMonitoring args: what the pure builders below consume."""

    name: str
    namespace: str
    replicas: int = 3
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)
    backup_schedule: Optional[str] = None
    drill_schedule: Optional[str] = None


def monitoring_spec(args: OpenBaoMonitoringArgs) -> MonitoringSpec:
    """The validated spec (the stack config's identity, ``replicas`` and ``monitoring`` rules), or ArgsError."""
    with ArgsCheck("OpenBaoMonitoring") as check:
        names = check.identity(args)
        check.input_name("ca_secret_name", args.get("ca_secret_name"))
        when = args.get("server_cert_renewal_time")
        if not isinstance(when, pulumi.Output):  # a time from another resource is checked when it resolves
            check.section("", {"server_cert_renewal_time": when},
                          lambda r: _parse_time(r, "serverCertRenewalTime", _RENEWAL_FIX))
        expiry = args.get("server_cert_expiry_time")
        if expiry is not None and not isinstance(expiry, pulumi.Output):
            check.section("", {"server_cert_expiry_time": expiry},
                          lambda r: _parse_time(r, "serverCertExpiryTime", _EXPIRY_FIX))
        replicas = check.section("", {"replicas": args.get("replicas")}, _parse_replicas)
        monitoring = check.section("monitoring", {"release_label": args.get("release_label")})
        schedules = check.section("", {k: args.get(k) for k in ("backup_schedule", "drill_schedule")}, _parse_schedules)
    return MonitoringSpec(name=names.name, namespace=names.namespace, replicas=replicas, monitoring=monitoring,
                          backup_schedule=schedules[0], drill_schedule=schedules[1])


def _parse_schedules(r: _Reader) -> tuple[Optional[str], Optional[str]]:
    fix = "use the CronJob's five-field schedule, e.g. '0 */6 * * *'"
    found: list[Optional[str]] = []
    for key in ("backupSchedule", "drillSchedule"):
        value = r.get(key, str, None, fix)
        if value is not None and not is_five_field_cron(value):
            r.fail(key, value, "is not a five-field cron expression", fix)
            value = None
        found.append(value)
    if found[1] is not None and r.raw.get("backupSchedule") is None:
        r.fail("drillSchedule", found[1], "needs the backup schedule too (the drill verifies what the backup uploads)",
               "pass backup_schedule too, or drop drill_schedule")
    return found[0], found[1]


#: Slack on top of a schedule's longest gap before a missing success counts as stale: a run's
#: deadline (the backup and drill Jobs' activeDeadlineSeconds, 30 minutes) and as much again.
FRESHNESS_GRACE_SECONDS = 3600


def stale_expression(namespace: str, cronjob: str, limit: int) -> str:
    """True when ``cronjob`` last succeeded more than ``limit`` seconds ago, or has existed that
    long without ever succeeding (kube-state-metrics exports no last-success time until the first)."""
    sel = f'namespace="{namespace}", cronjob="{cronjob}"'
    return (f"(time() - kube_cronjob_status_last_successful_time{{{sel}}}) > {limit} "
            f"or ((time() - kube_cronjob_created{{{sel}}}) > {limit} "
            f"unless on(namespace, cronjob) kube_cronjob_status_last_successful_time{{{sel}}})")


def freshness_rules(spec: MonitoringSpec, rule: Any) -> list[Obj]:
    """OpenBaoBackupStale: no snapshot uploaded, or none proven restorable, within what the
    schedules allow. With the drill on, the newest verified snapshot is at most one backup gap
    plus one drill gap old while both alerts stay quiet."""
    if not spec.backup_schedule:
        return []
    terms = [stale_expression(spec.namespace, f"{spec.name}-backup",
                              longest_interval(spec.backup_schedule) + FRESHNESS_GRACE_SECONDS)]
    what = "uploaded"
    if spec.drill_schedule:
        terms.append(stale_expression(spec.namespace, f"{spec.name}-backup-drill",
                                      longest_interval(spec.drill_schedule) + FRESHNESS_GRACE_SECONDS))
        what = "uploaded or proven restorable by the drill"
    return [rule("OpenBaoBackupStale", " or ".join(f"({t})" for t in terms), "5m", "critical",
                 f"No snapshot was {what} within what the schedule allows.", "runbook-backup.md")]


_RENEWAL_FIX = ("use an RFC 3339 UTC time such as 2030-01-01T00:00:00Z (the certificate's notAfter minus its "
                "early-renewal window)")
_EXPIRY_FIX = "use an RFC 3339 UTC time such as 2030-01-31T00:00:00Z (the certificate's notAfter)"


def _parse_time(r: _Reader, key: str, fix: str) -> None:
    """A required RFC 3339 UTC time under ``key``."""
    if key not in r.raw:
        r.fail(key, None, "is required", fix)
        return
    value = r.get(key, str, None, fix)
    if value is None:  # not a string: reported
        return
    try:
        dt.datetime.strptime(value, _RFC3339)
    except ValueError:
        r.fail(key, value, "is not an RFC 3339 UTC time", fix)


def renewal_time(not_after_rfc3339: str, early_renewal_hours: int) -> str:
    """RFC 3339 time at which a certificate with this notAfter enters its early-renewal window."""
    not_after = dt.datetime.strptime(not_after_rfc3339, _RFC3339)
    return (not_after - dt.timedelta(hours=early_renewal_hours)).strftime(_RFC3339)


def _epoch(rfc3339: str) -> int:
    return int(dt.datetime.strptime(rfc3339, _RFC3339).replace(tzinfo=dt.timezone.utc).timestamp())


def renewal_epoch(not_after_rfc3339: str, early_renewal_hours: int) -> int:
    """Unix time at which the certificate enters its early-renewal window."""
    return _epoch(renewal_time(not_after_rfc3339, early_renewal_hours))


def service_monitor(spec: MonitoringSpec, ca_secret: str) -> Obj:
    meta = cm.metadata(spec, spec.name, annotations=dict(SKIP_AWAIT))  # no readiness to wait for
    meta["labels"]["release"] = spec.monitoring.release_label
    return {
        "apiVersion": MONITORING_API, "kind": "ServiceMonitor", "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {**spec.selector_labels,
                                         "app.kubernetes.io/component": cm.PEERS_COMPONENT}},
            "namespaceSelector": {"matchNames": [spec.namespace]},
            "endpoints": [{
                "port": "https", "scheme": "https", "path": "/v1/sys/metrics",
                "params": {"format": ["prometheus"]}, "interval": "30s",
                "tlsConfig": {"ca": {"secret": {"name": ca_secret, "key": "ca.crt"}},
                              "serverName": spec.service_dns_name(spec.headless_service)},
            }],
        },
    }


def alert_rules(spec: MonitoringSpec, renew_at: int, expires_at: Optional[int] = None) -> list[Obj]:
    """The alerts operators need first; each names the runbook in docs/."""
    ns = f'namespace="{spec.namespace}"'
    quorum_loss_ok = (spec.replicas - 1) // 2
    # The StatefulSet's claim templates "data" and "audit" make PVCs <template>-<name>-<ordinal>.
    pvcs = f'{ns}, persistentvolumeclaim=~"(data|audit)-{spec.name}-[0-9]+"'
    free = f"kubelet_volume_stats_available_bytes{{{pvcs}}} / kubelet_volume_stats_capacity_bytes{{{pvcs}}}"

    def rule(name: str, expr: str, for_: str, severity: str, summary: str, runbook: str) -> Obj:
        return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
                "annotations": {"summary": summary, "runbook": f"docs/{runbook}"}}

    return [
        rule("OpenBaoSealed", f"vault_core_unsealed{{{ns}}} == 0", "2m", "critical",
             "An OpenBao node is sealed (static seal failed to unseal it).", "runbook-unseal-key-rotation.md"),
        rule("OpenBaoNodeDown", f'up{{{ns}, service="{spec.headless_service}"}} == 0', "5m", "warning",
             "An OpenBao node is not answering scrapes.", "runbook-upgrade.md"),
        rule("OpenBaoNoActiveLeader",
             f"sum(vault_core_active{{{ns}}}) < 1 or absent(vault_core_active{{{ns}}})", "1m", "critical",
             "No OpenBao node is active: the cluster serves no requests.", "runbook-restore.md"),
        rule("OpenBaoQuorumAtRisk",
             f"max(vault_autopilot_failure_tolerance{{{ns}}}) < {quorum_loss_ok} "
             f"or min(vault_autopilot_healthy{{{ns}}}) == 0", "5m", "critical",
             "Fewer healthy Raft voters than the cluster needs to survive another failure.", "runbook-upgrade.md"),
        # Full volumes (docs/runbook-full-volumes.md): a full data volume takes its node out of
        # Raft while autopilot still calls it healthy; a full audit volume with one device
        # refuses every request while health checks pass. Warn with days to spare, page before full.
        rule("OpenBaoVolumeFillingUp",
             f"({free}) < 0.25 or (({free}) < 0.5 and "
             f"predict_linear(kubelet_volume_stats_available_bytes{{{pvcs}}}[6h], 4 * 86400) < 0)", "15m", "warning",
             "An OpenBao data or audit volume is over 75% used or on course to fill within 4 days.",
             "runbook-full-volumes.md"),
        rule("OpenBaoVolumeNearlyFull", f"({free}) < 0.1", "5m", "critical",
             "An OpenBao data or audit volume is over 90% used: free space or expand it now.",
             "runbook-full-volumes.md"),
        rule("OpenBaoAuditBlocked",
             f"increase(vault_audit_log_request_failure{{{ns}}}[5m]) > 0 "
             f"or increase(vault_audit_log_response_failure{{{ns}}}[5m]) > 0", "1m", "critical",
             "No audit device could log requests: OpenBao refuses them (HTTP 500) while health checks pass.",
             "runbook-full-volumes.md"),
        rule("OpenBaoBackupFailing",
             f'kube_job_status_failed{{{ns}, job_name=~"{spec.name}-backup-.*"}} > 0'
             + ("" if spec.backup_schedule else
                f' or (time() - kube_cronjob_status_last_successful_time{{{ns}, cronjob="{spec.name}-backup"}}) > 86400'),
             "10m", "critical",
             "A snapshot, upload or restore-drill Job failed." if spec.backup_schedule else
             "The snapshot CronJob failed or has not succeeded for a day.", "runbook-backup.md"),
        *freshness_rules(spec, rule),
        rule("OpenBaoCertificateRenewalDue", f"vector(time()) > {renew_at}", "1h", "warning",
             "The OpenBao server certificate is inside its renewal window: run `pulumi up`.",
             "runbook-certificate-rotation.md"),
        *([rule("OpenBaoCertificateExpired", f"vector(time()) > {expires_at}", "0m", "critical",
                "The OpenBao server certificate has expired: clients and scrapes fail TLS (so the leader and "
                "node alerts fire too) while the Raft data is fine. Renew it with `pulumi up`; do not restore "
                "or restart.", "runbook-certificate-rotation.md")] if expires_at is not None else []),
    ]


def prometheus_rule(spec: MonitoringSpec, renew_at: int, expires_at: Optional[int] = None) -> Obj:
    meta = cm.metadata(spec, spec.name, annotations=dict(SKIP_AWAIT))  # no readiness to wait for
    meta["labels"]["release"] = spec.monitoring.release_label
    return {"apiVersion": MONITORING_API, "kind": "PrometheusRule", "metadata": meta,
            "spec": {"groups": [{"name": "openbao", "rules": alert_rules(spec, renew_at, expires_at)}]}}


class OpenBaoMonitoring(pulumi.ComponentResource):
    """ServiceMonitor + PrometheusRule."""

    rule_name: pulumi.Output[str]
    """The PrometheusRule's name."""

    def __init__(self, name: str, args: OpenBaoMonitoringArgs,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        spec = monitoring_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("OpenBaoMonitoring"), name, None, with_previous_token(opts, "openbao:monitoring:OpenBaoMonitoring"))
        child = pulumi.ResourceOptions(parent=self)
        sm = service_monitor(spec, "")
        k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor", api_version=sm["apiVersion"], kind=sm["kind"], metadata=sm["metadata"],
            spec=pulumi.Output.from_input(args["ca_secret_name"]).apply(lambda ca: service_monitor(spec, ca)["spec"]),
            opts=child)
        pr = prometheus_rule(spec, 0)
        k8s.apiextensions.CustomResource(
            f"{name}-prometheusrule", api_version=pr["apiVersion"], kind=pr["kind"], metadata=pr["metadata"],
            spec=pulumi.Output.all(args["server_cert_renewal_time"], args.get("server_cert_expiry_time")).apply(
                lambda t: prometheus_rule(spec, _epoch(t[0]), _epoch(t[1]) if t[1] else None)["spec"]),
            opts=child)
        self.rule_name = pulumi.Output.from_input(pr["metadata"]["name"])
        self.register_outputs({"rule_name": self.rule_name})
