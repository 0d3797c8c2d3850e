"""OpenBaoMonitoring: a ServiceMonitor and a PrometheusRule (Prometheus Operator CRDs).

Scrapes go to the headless Service (it publishes not-ready pods, so a sealed node is still
a target) over TLS verified with our CA. Metrics are unauthenticated at the listener and
restricted by NetworkPolicy to the Prometheus pods: a scrape token would be one more
standing credential to rotate and leak, and metrics carry no secrets.

OpenBao exports no certificate-expiry metric, so the expiry alert embeds the time the
server certificate enters its renewal window (from pulumi-tls); each ``pulumi up`` that
renews the certificate moves it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components import cluster_manifests as cm
from components.lifecycle import SKIP_AWAIT
from components.settings import Settings

Obj = dict[str, Any]

MONITORING_API = "monitoring.coreos.com/v1"


def renewal_epoch(not_after_rfc3339: str, early_renewal_hours: int) -> int:
    """Unix time at which the certificate enters its early-renewal window."""
    not_after = dt.datetime.strptime(not_after_rfc3339, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
    return int((not_after - dt.timedelta(hours=early_renewal_hours)).timestamp())


def service_monitor(settings: Settings, ca_secret: str) -> Obj:
    meta = cm.metadata(settings, settings.name, annotations=dict(SKIP_AWAIT))  # no readiness to wait for
    meta["labels"]["release"] = settings.monitoring.release_label
    return {
        "apiVersion": MONITORING_API, "kind": "ServiceMonitor", "metadata": meta,
        "spec": {
            "selector": {"matchLabels": {**settings.selector_labels,
                                         "app.kubernetes.io/component": cm.PEERS_COMPONENT}},
            "namespaceSelector": {"matchNames": [settings.namespace]},
            "endpoints": [{
                "port": "https", "scheme": "https", "path": "/v1/sys/metrics",
                "params": {"format": ["prometheus"]}, "interval": "30s",
                "tlsConfig": {"ca": {"secret": {"name": ca_secret, "key": "ca.crt"}},
                              "serverName": settings.service_dns_name(settings.headless_service)},
            }],
        },
    }


def alert_rules(settings: Settings, renew_at: int) -> list[Obj]:
    """The alerts operators need first; each names the runbook in docs/."""
    ns = f'namespace="{settings.namespace}"'
    quorum_loss_ok = (settings.replicas - 1) // 2

    def rule(name: str, expr: str, for_: str, severity: str, summary: str, runbook: str) -> Obj:
        return {"alert": name, "expr": expr, "for": for_, "labels": {"severity": severity},
                "annotations": {"summary": summary, "runbook": f"docs/{runbook}"}}

    return [
        rule("OpenBaoSealed", f"vault_core_unsealed{{{ns}}} == 0", "2m", "critical",
             "An OpenBao node is sealed (static seal failed to unseal it).", "runbook-unseal-key-rotation.md"),
        rule("OpenBaoNodeDown", f'up{{{ns}, service="{settings.headless_service}"}} == 0', "5m", "warning",
             "An OpenBao node is not answering scrapes.", "runbook-upgrade.md"),
        rule("OpenBaoNoActiveLeader",
             f"sum(vault_core_active{{{ns}}}) < 1 or absent(vault_core_active{{{ns}}})", "1m", "critical",
             "No OpenBao node is active: the cluster serves no requests.", "runbook-restore.md"),
        rule("OpenBaoQuorumAtRisk",
             f"max(vault_autopilot_failure_tolerance{{{ns}}}) < {quorum_loss_ok} "
             f"or min(vault_autopilot_healthy{{{ns}}}) == 0", "5m", "critical",
             "Fewer healthy Raft voters than the cluster needs to survive another failure.", "runbook-upgrade.md"),
        rule("OpenBaoBackupFailing",
             f'kube_job_status_failed{{{ns}, job_name=~"{settings.name}-backup-.*"}} > 0 '
             f'or (time() - kube_cronjob_status_last_successful_time{{{ns}, cronjob="{settings.name}-backup"}}) '
             f"> 86400", "10m", "critical",
             "The snapshot CronJob failed or has not succeeded for a day.", "runbook-backup.md"),
        rule("OpenBaoCertificateRenewalDue", f"time() > {renew_at}", "1h", "warning",
             "The OpenBao server certificate is inside its renewal window: run `pulumi up`.",
             "runbook-certificate-rotation.md"),
    ]


def prometheus_rule(settings: Settings, renew_at: int) -> Obj:
    meta = cm.metadata(settings, settings.name, annotations=dict(SKIP_AWAIT))  # no readiness to wait for
    meta["labels"]["release"] = settings.monitoring.release_label
    return {"apiVersion": MONITORING_API, "kind": "PrometheusRule", "metadata": meta,
            "spec": {"groups": [{"name": "openbao", "rules": alert_rules(settings, renew_at)}]}}


@dataclass(frozen=True)
class OpenBaoMonitoringArgs:
    """Inputs: settings, the CA-only Secret and the server certificate's notAfter (RFC 3339)."""

    settings: Settings
    ca_secret_name: pulumi.Input[str]
    server_cert_not_after: pulumi.Input[str]


class OpenBaoMonitoring(pulumi.ComponentResource):
    """ServiceMonitor + PrometheusRule."""

    rule_name: str
    """The PrometheusRule's name."""

    def __init__(self, name: str, args: OpenBaoMonitoringArgs,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("openbao:monitoring:OpenBaoMonitoring", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        sm = service_monitor(s, "")
        k8s.apiextensions.CustomResource(
            f"{name}-servicemonitor", api_version=sm["apiVersion"], kind=sm["kind"], metadata=sm["metadata"],
            spec=pulumi.Output.from_input(args.ca_secret_name).apply(lambda ca: service_monitor(s, ca)["spec"]),
            opts=child)
        pr = prometheus_rule(s, 0)
        k8s.apiextensions.CustomResource(
            f"{name}-prometheusrule", api_version=pr["apiVersion"], kind=pr["kind"], metadata=pr["metadata"],
            spec=pulumi.Output.from_input(args.server_cert_not_after).apply(
                lambda t: prometheus_rule(s, renewal_epoch(t, s.pki.early_renewal_hours))["spec"]),
            opts=child)
        self.rule_name = s.name
        self.register_outputs({"rule_name": self.rule_name})
