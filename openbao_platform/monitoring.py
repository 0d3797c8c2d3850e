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
    replicas: int
    """Raft voters the cluster runs (odd, 1-7): the quorum alert's threshold. Default 3."""
    release_label: str
    """Value of the ``release`` label the Prometheus Operator selects rules and monitors by. Default prometheus."""


@dataclass(frozen=True)
class MonitoringSpec(NamedCluster):
    """Validated OpenBaoMonitoring args: what the pure builders below consume."""

    name: str
    namespace: str
    replicas: int = 3
    monitoring: MonitoringSettings = field(default_factory=MonitoringSettings)


def monitoring_spec(args: OpenBaoMonitoringArgs) -> MonitoringSpec:
    """The validated spec (the stack config's identity, ``replicas`` and ``monitoring`` rules), or ArgsError."""
    with ArgsCheck("OpenBaoMonitoring") as check:
        names = check.identity(args)
        check.input_name("ca_secret_name", args.get("ca_secret_name"))
        when = args.get("server_cert_renewal_time")
        if not isinstance(when, pulumi.Output):  # a time from another resource is checked when it resolves
            check.section("", {"server_cert_renewal_time": when}, _parse_renewal_time)
        replicas = check.section("", {"replicas": args.get("replicas")}, _parse_replicas)
        monitoring = check.section("monitoring", {"release_label": args.get("release_label")})
    return MonitoringSpec(name=names.name, namespace=names.namespace, replicas=replicas, monitoring=monitoring)


def _parse_renewal_time(r: _Reader) -> None:
    fix = ("use an RFC 3339 UTC time such as 2030-01-01T00:00:00Z (the certificate's notAfter minus its "
           "early-renewal window)")
    if "serverCertRenewalTime" not in r.raw:
        r.fail("serverCertRenewalTime", None, "is required", fix)
        return
    value = r.get("serverCertRenewalTime", str, None, fix)
    if value is None:  # not a string: reported
        return
    try:
        dt.datetime.strptime(value, _RFC3339)
    except ValueError:
        r.fail("serverCertRenewalTime", value, "is not an RFC 3339 UTC time", fix)


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


def alert_rules(spec: MonitoringSpec, renew_at: int) -> list[Obj]:
    """The alerts operators need first; each names the runbook in docs/."""
    ns = f'namespace="{spec.namespace}"'
    quorum_loss_ok = (spec.replicas - 1) // 2

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
        rule("OpenBaoBackupFailing",
             f'kube_job_status_failed{{{ns}, job_name=~"{spec.name}-backup-.*"}} > 0 '
             f'or (time() - kube_cronjob_status_last_successful_time{{{ns}, cronjob="{spec.name}-backup"}}) '
             f"> 86400", "10m", "critical",
             "The snapshot CronJob failed or has not succeeded for a day.", "runbook-backup.md"),
        rule("OpenBaoCertificateRenewalDue", f"time() > {renew_at}", "1h", "warning",
             "The OpenBao server certificate is inside its renewal window: run `pulumi up`.",
             "runbook-certificate-rotation.md"),
    ]


def prometheus_rule(spec: MonitoringSpec, renew_at: int) -> Obj:
    meta = cm.metadata(spec, spec.name, annotations=dict(SKIP_AWAIT))  # no readiness to wait for
    meta["labels"]["release"] = spec.monitoring.release_label
    return {"apiVersion": MONITORING_API, "kind": "PrometheusRule", "metadata": meta,
            "spec": {"groups": [{"name": "openbao", "rules": alert_rules(spec, renew_at)}]}}


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
            spec=pulumi.Output.from_input(args["server_cert_renewal_time"]).apply(
                lambda t: prometheus_rule(spec, _epoch(t))["spec"]),
            opts=child)
        self.rule_name = pulumi.Output.from_input(pr["metadata"]["name"])
        self.register_outputs({"rule_name": self.rule_name})
