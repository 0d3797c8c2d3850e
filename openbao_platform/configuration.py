"""OpenBaoConfiguration: tenants and ACL policies as code, reconciled inside the cluster.

Self-initialisation runs once, on empty storage; this component is what carries a
configuration change to a running cluster. It ships the desired state in a ConfigMap (one
key per object: ``policy.<name>.hcl``, ``role.<name>``; nothing secret, so ``pulumi preview
--diff`` shows exactly which policy or role changes) and runs openbao_platform/scripts/
reconcile.sh with the OpenBao image's ``bao`` CLI:

* a **Job** ``<name>-reconcile-<hash>``, the hash covering the desired state and the script.
  pulumi-kubernetes replaces a Job on any ``.spec.template`` change (provider/pkg/provider/
  diff.go ``job`` force-new properties, at 94977969d), and the name changes with the hash, so
  every change is a new Job, created before the old one is deleted; ``pulumi up`` waits until
  it completes (provider/pkg/await/job.go, here with a 10-minute custom timeout) and fails with
  the pod's termination message, which ``FallbackToLogsOnError`` fills with the script's own
  error. No ``ttlSecondsAfterFinished``: the TTL controller would delete the Job behind
  Pulumi's state (a ``pulumi refresh`` would then re-create and re-run it); it stays, one per
  stack, until the next change replaces it.
* a **CronJob** ``<name>-reconcile`` applying the same state on a schedule: drift made by hand
  is reverted and logged.

Both run as ServiceAccount ``<name>-reconciler`` under Pod Security "restricted", with a
projected, short-lived token they log in with (kubernetes auth role ``reconciler``, created by
self-init: openbao_platform/server_config.py ``reconciler_policy``), no Kubernetes API token,
and a NetworkPolicy (OpenBaoNetworkPolicies ``allow_reconciler``) admitting DNS and the
OpenBao API only.
"""

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s

from openbao_platform import cluster_manifests as cm
from openbao_platform.declared import (
    DEFAULT_SCHEDULE,
    OWNERSHIP_PATH,
    ConfigurationSettings,
    desired_state,
    parse_configuration,
)
from openbao_platform.image import IMAGE_KEYS, ImageArgs
from openbao_platform.k8s_args import typed_kwargs
from openbao_platform.naming import NamedCluster
from openbao_platform.scripts import script
from openbao_platform.server_config import API_PORT, reconciler_service_account
from openbao_platform.settings import ArgsCheck, ImageSettings, _camel
from openbao_platform.tokens import token

Obj = dict[str, Any]

DESIRED_DIR = "/config"
SCRIPT_DIR = "/scripts"
TOKEN_DIR = "/var/run/secrets/openbao"
CA_DIR = "/openbao/ca"
TOKEN_SECONDS = 600
#: How long `pulumi up` waits for the reconcile Job (the provider's default is also 10 minutes).
JOB_TIMEOUTS = pulumi.CustomTimeouts(create="10m", update="10m", delete="5m")


class ConfigurationRuleArgs(TypedDict, total=False):
    """One path of an ACL policy and what it grants there."""

    path: Required[str]
    """An API path, '*' only at the end (never under sys/ or auth/)."""
    capabilities: Required[list[str]]
    """Some of create, read, update, patch, delete, list, sudo, deny."""


class ConfigurationPolicyArgs(TypedDict, total=False):
    """An extra named ACL policy (stored as ``shared-<name>``)."""

    name: Required[str]
    """Policy name (lower-case letters, digits, '-'); OpenBao stores it as shared-<name>."""
    rules: Required[list[ConfigurationRuleArgs]]
    """Paths and their capabilities."""


class ConfigurationTenantArgs(TypedDict, total=False):
    """One application namespace: who logs in and what it may read and write."""

    namespace: Required[str]
    """The application namespace; its policy and kubernetes auth role are tenant-<namespace>."""
    service_accounts: Required[list[str]]
    """ServiceAccounts of that namespace that may log in (never '*')."""
    read: list[str]
    """KV paths it may read and list. Default its own subtree <kv_mount>/{data,metadata}/tenants/<namespace>/*."""
    write: list[str]
    """KV paths it may create, update, patch and delete. Default its own subtree."""
    policies: list[str]
    """Extra policies (names under ``policies``) its role also grants. Default none."""
    token_ttl: int
    """Token TTL in seconds (60-86400). Default 3600."""
    token_max_ttl: int
    """Token maximum TTL in seconds (token_ttl-86400). Default 14400."""


class ConfigurationSecretEngineArgs(TypedDict, total=False):
    """A secrets engine mounted at ``apps/<name>/``: created and tuned, never disabled."""

    name: Required[str]
    """Mount name (lower-case letters, digits, '-'); mounted at apps/<name>/."""
    type: Required[str]
    """kv-v2, pki or transit."""
    description: str
    """One line shown by `bao secrets list`. Default none."""
    default_lease_ttl: int
    """Default lease TTL in seconds (60 s-87600 h). Default OpenBao's (the system default)."""
    max_lease_ttl: int
    """Maximum lease TTL in seconds (60 s-87600 h). Default OpenBao's."""
    max_versions: int
    """kv-v2 only: versions kept per secret (0-1000, 0 = OpenBao's default 10)."""
    cas_required: bool
    """kv-v2 only: writes must name the version they replace (check-and-set)."""


class OpenBaoConfigurationArgs(TypedDict, total=False):
    """Inputs of OpenBaoConfiguration: the cluster to configure and the declared configuration."""

    name: Required[str]
    """Name of the OpenBao cluster: the jobs call <name>-active as ServiceAccount <name>-reconciler (auth role reconciler)."""
    namespace: Required[str]
    """Namespace of the cluster; the jobs, ConfigMaps and ServiceAccount live there too."""
    ca_secret_name: Required[pulumi.Input[str]]
    """Secret holding only the CA certificate as ``ca.crt`` (e.g. ClusterPki's ca_secret_name)."""
    kv_mount: str
    """The KV v2 mount self-init created (tenant subtrees and the ownership record live there). Default secret."""
    tenants: list[ConfigurationTenantArgs]
    """Application namespaces and their access. Default none."""
    policies: list[ConfigurationPolicyArgs]
    """Extra ACL policies tenants may bind. Default none."""
    secret_engines: list[ConfigurationSecretEngineArgs]
    """Secrets engines under apps/ (KV v2, PKI, transit). Default none."""
    schedule: str
    """Five-field cron schedule (UTC) of the drift-correcting CronJob. Default */30 * * * *."""
    image: ImageArgs
    """The jobs' image (its bao CLI). Default quay.io/openbao/openbao at the tested version."""


@dataclass(frozen=True)
class ConfigurationSpec(NamedCluster):
    """Validated OpenBaoConfiguration args: what the pure builders below consume."""

    name: str
    namespace: str
    configuration: ConfigurationSettings = field(default_factory=ConfigurationSettings)
    image: ImageSettings = field(default_factory=ImageSettings)


_TENANT_ARGS = ("read", "write", "policies", "token_ttl", "token_max_ttl")
_ENGINE_ARGS = ("description", "default_lease_ttl", "max_lease_ttl", "max_versions", "cas_required")


def _camel_items(item: Mapping[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """The given optional args of one list item under their stack-config names (lists as lists)."""
    return {_camel(k): list(item[k]) if isinstance(item[k], (list, tuple)) else item[k]
            for k in keys if item.get(k) is not None}


def _raw_configuration(args: Mapping[str, Any]) -> dict[str, Any]:
    """The args in the stack config's shape, so the stack config's own rules validate them."""
    raw: dict[str, Any] = {}
    if args.get("schedule") is not None:
        raw["configuration"] = {"schedule": args["schedule"]}
    if args.get("policies") is not None:
        raw["policies"] = {p.get("name"): {r.get("path"): list(r.get("capabilities") or []) for r in p.get("rules") or []}
                           for p in args["policies"]}
    if args.get("tenants") is not None:
        raw["tenants"] = {t.get("namespace"): {"serviceAccounts": t.get("service_accounts"),
                                               **_camel_items(t, _TENANT_ARGS)} for t in args["tenants"]}
    if args.get("secret_engines") is not None:
        raw["secretEngines"] = {e.get("name"): {"type": e.get("type"), **_camel_items(e, _ENGINE_ARGS)}
                                for e in args["secret_engines"]}
    return raw


def configuration_spec(args: OpenBaoConfigurationArgs) -> ConfigurationSpec:
    """The validated spec (the stack config's rules for tenants, policies and image), or ArgsError."""
    with ArgsCheck("OpenBaoConfiguration") as check:
        names = check.identity(args)
        check.input_name("ca_secret_name", args.get("ca_secret_name"))
        kv_mount = args.get("kv_mount") or "secret"
        config = check.section("", _raw_configuration(args),
                               lambda r: parse_configuration(r, names.namespace, kv_mount))
        image = args.get("image") or {}
        image_settings = check.section("image", {k: image.get(k) for k in IMAGE_KEYS}, field="image")
    return ConfigurationSpec(name=names.name, namespace=names.namespace, configuration=config, image=image_settings)


def reconciler_labels(cluster: NamedCluster) -> dict[str, str]:
    """Pod labels the reconciler's NetworkPolicy selects."""
    return {"app.kubernetes.io/name": "openbao-reconcile", "app.kubernetes.io/instance": cluster.name}


def desired_config_map_name(cluster: NamedCluster) -> str:
    return f"{cluster.name}-configuration"


def script_config_map_name(cluster: NamedCluster) -> str:
    return f"{cluster.name}-reconcile-script"


def state_hash(spec: ConfigurationSpec) -> str:
    """Digest of everything a run applies (desired state, script, image, environment): it names the Job,
    so any change of the pod is a new name, which the engine creates before it deletes the old Job."""
    doc = {"state": desired_state(spec.configuration), "script": script("reconcile.sh"),
           "image": [spec.image.reference, spec.image.pull_policy], "env": reconcile_environment(spec)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:10]


def job_name(spec: ConfigurationSpec) -> str:
    return f"{spec.name}-reconcile-{state_hash(spec)}"


def reconcile_environment(spec: ConfigurationSpec) -> dict[str, str]:
    """The script's inputs; the e2e suite runs the same script with the same variables."""
    return {
        "BAO_ADDR": f"https://{spec.active_dns_name}:{API_PORT}",
        "BAO_CACERT": f"{CA_DIR}/ca.crt",
        "RECONCILE_DIR": DESIRED_DIR,
        "RECONCILE_ROLE": "reconciler",
        "RECONCILE_JWT_FILE": f"{TOKEN_DIR}/token",
        "RECONCILE_KV_MOUNT": spec.configuration.kv_mount,
        "RECONCILE_OWNED_PATH": OWNERSHIP_PATH,
        "HOME": "/tmp",
    }


def desired_config_map(spec: ConfigurationSpec) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": cm.metadata(spec, desired_config_map_name(spec)),
            "data": desired_state(spec.configuration)}


def script_config_map(spec: ConfigurationSpec) -> Obj:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": cm.metadata(spec, script_config_map_name(spec)),
            "data": {"reconcile.sh": script("reconcile.sh")}}


def pod_template(spec: ConfigurationSpec, ca_secret: str) -> Obj:
    container = {
        "name": "reconcile",
        "image": spec.image.reference,
        "imagePullPolicy": spec.image.pull_policy,
        "command": ["/bin/sh", f"{SCRIPT_DIR}/reconcile.sh"],
        "env": [{"name": k, "value": v} for k, v in reconcile_environment(spec).items()],
        "volumeMounts": [
            {"name": "script", "mountPath": SCRIPT_DIR, "readOnly": True},
            {"name": "desired", "mountPath": DESIRED_DIR, "readOnly": True},
            {"name": "ca", "mountPath": CA_DIR, "readOnly": True},
            {"name": "token", "mountPath": TOKEN_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
        # `pulumi up` shows the pod's termination message: the script's own last lines.
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": cm.container_security_context(),
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"cpu": "500m", "memory": "128Mi"}},
    }
    return {
        "metadata": {"labels": {**spec.common_labels, **reconciler_labels(spec)}},
        "spec": {
            "serviceAccountName": reconciler_service_account(spec),
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "restartPolicy": "Never",
            "securityContext": cm.pod_security_context(),
            "containers": [container],
            "volumes": [
                {"name": "script", "configMap": {"name": script_config_map_name(spec), "defaultMode": 0o444}},
                {"name": "desired", "configMap": {"name": desired_config_map_name(spec), "defaultMode": 0o444}},
                {"name": "ca", "secret": {"secretName": ca_secret, "defaultMode": 0o444}},
                {"name": "token", "projected": {"defaultMode": 0o440, "sources": [{"serviceAccountToken": {
                    "path": "token", "expirationSeconds": TOKEN_SECONDS}}]}},
                {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
            ],
        },
    }


def _job_spec(spec: ConfigurationSpec, ca_secret: str) -> Obj:
    # A few retries for a transient failure (a leader election); a bad state fails every try.
    return {"backoffLimit": 2, "activeDeadlineSeconds": 300, "template": pod_template(spec, ca_secret)}


def job(spec: ConfigurationSpec, ca_secret: str) -> Obj:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": cm.metadata(spec, job_name(spec), annotations=cm.waiver_annotations(cm.image_waivers(spec))),
            "spec": _job_spec(spec, ca_secret)}


def cron_job(spec: ConfigurationSpec, ca_secret: str) -> Obj:
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": cm.metadata(spec, f"{spec.name}-reconcile",
                                annotations=cm.waiver_annotations(cm.image_waivers(spec))),
        "spec": {
            "schedule": spec.configuration.schedule,
            "timeZone": "Etc/UTC",
            "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": 600,
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": reconciler_labels(spec)},
                            "spec": {**_job_spec(spec, ca_secret), "ttlSecondsAfterFinished": 86400}},
        },
    }


class OpenBaoConfiguration(pulumi.ComponentResource):
    """Desired-state ConfigMap, reconcile Job (awaited by `pulumi up`), drift-correcting CronJob, ServiceAccount."""

    job_name: pulumi.Output[str]
    """The reconcile Job of the current desired state (its log lists every object's outcome)."""
    cron_job_name: pulumi.Output[str]
    """The CronJob re-applying the desired state (run now: kubectl create job --from=cronjob/<name> ...)."""
    config_map_name: pulumi.Output[str]
    """The ConfigMap holding the desired state, one key per object."""

    def __init__(self, name: str, args: OpenBaoConfigurationArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        spec = configuration_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("OpenBaoConfiguration"), name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        sa = k8s.core.v1.ServiceAccount(
            f"{name}-sa", **typed_kwargs(cm.service_account(spec, reconciler_service_account(spec), False)), opts=child)
        script_cm = k8s.core.v1.ConfigMap(f"{name}-script", **typed_kwargs(script_config_map(spec)), opts=child)
        desired = k8s.core.v1.ConfigMap(f"{name}-desired", **typed_kwargs(desired_config_map(spec)), opts=child)
        ca = pulumi.Output.from_input(args["ca_secret_name"])
        # Children do not inherit the component's depends_on: the Job must wait for what the
        # component was told to wait for (the cluster: a reconcile needs a serving leader).
        given = (opts.depends_on if opts else None) or []
        deps = [*(given if isinstance(given, (list, tuple)) else [given]), sa, script_cm, desired]
        job_obj = job(spec, "")
        run = k8s.batch.v1.Job(
            f"{name}-job", metadata=job_obj["metadata"], spec=ca.apply(lambda c: _job_spec(spec, c)),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps, custom_timeouts=JOB_TIMEOUTS))
        cron_obj = cron_job(spec, "")
        cron = k8s.batch.v1.CronJob(
            f"{name}-cronjob", metadata=cron_obj["metadata"], spec=ca.apply(lambda c: cron_job(spec, c)["spec"]),
            opts=pulumi.ResourceOptions(parent=self, depends_on=deps))
        self.job_name = run.metadata.name
        self.cron_job_name = cron.metadata.name
        self.config_map_name = desired.metadata.name
        self.register_outputs({"job_name": self.job_name, "cron_job_name": self.cron_job_name,
                               "config_map_name": self.config_map_name})


__all__ = ["OpenBaoConfiguration", "OpenBaoConfigurationArgs", "ConfigurationTenantArgs", "ConfigurationPolicyArgs",
           "ConfigurationRuleArgs", "DEFAULT_SCHEDULE"]
