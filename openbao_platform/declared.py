"""The declared OpenBao configuration: tenants, extra ACL policies, secrets engines and the
reconciler's schedule.

Stack keys ``tenants``, ``policies``, ``secretEngines`` and ``configuration``; validated like every other key (key,
value, fix) before any resource, with the same reader as openbao_platform/settings.py. The
OpenBaoConfiguration component (openbao_platform/configuration.py) turns them into the
desired-state ConfigMap its reconcile Job applies inside the cluster.

Names are fixed by kind so the reconciler's static policy can cover exactly what it manages:
a tenant's policy and its kubernetes auth role are both ``tenant-<namespace>``, an extra
policy is ``shared-<name>``, a secrets engine is mounted at ``apps/<name>/``. Secrets engines
are created and tuned, never disabled: disabling a mount deletes every secret, key and
certificate in it, so the reconciler's policy has no ``delete`` on ``sys/mounts`` at all.
"""

import re
from dataclasses import dataclass
from typing import Any, Mapping

from openbao_platform.cron import is_five_field_cron

#: The capabilities OpenBao's ACL parser accepts (vault/policy.go upstream; `bao policy fmt`
#: rejects anything else, as the e2e suite shows). ``deny`` overrides the rest.
CAPABILITIES = ("create", "read", "update", "patch", "delete", "list", "sudo", "deny")
READ_CAPABILITIES = ("read", "list")
WRITE_CAPABILITIES = ("create", "update", "patch", "delete")
#: Bounds of a tenant's token TTLs, seconds.
MIN_TOKEN_TTL = 60
MAX_TOKEN_TTL = 86400
DEFAULT_TOKEN_TTL = 3600
DEFAULT_TOKEN_MAX_TTL = 14400
DEFAULT_SCHEDULE = "*/30 * * * *"
#: The KV v2 entry (under the self-init KV mount) where the reconciler records what it owns.
OWNERSHIP_PATH = "openbao-platform/reconciler"
TENANT_PREFIX = "tenant-"
SHARED_PREFIX = "shared-"
#: Where declared secrets engines are mounted (the reconciler's policy covers only this prefix).
ENGINE_PREFIX = "apps/"
#: Declared type -> (``bao secrets enable`` type, KV version or "").
ENGINE_TYPES = {"kv-v2": ("kv", "2"), "pki": ("pki", ""), "transit": ("transit", "")}
#: Lease TTL bounds of a declared mount, seconds (ten years: a PKI root's usual ceiling).
MIN_LEASE_TTL = 60
MAX_LEASE_TTL = 87600 * 3600
MAX_KV_VERSIONS = 1000

_POLICY_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,48}[a-z0-9])?$")
_PATH = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-+]+)*/?\*?$")
_DURATION = re.compile(r"^([0-9]+)(s|m|h)?$")
_KV_PATH_KINDS = ("data", "metadata", "delete", "undelete", "destroy")


@dataclass(frozen=True)
class TenantSettings:
    """One application namespace: who logs in, what it may read and write, token lifetimes."""

    namespace: str
    service_accounts: tuple[str, ...]
    read: tuple[str, ...]
    write: tuple[str, ...]
    policies: tuple[str, ...] = ()
    """Extra (``policies``) names bound to the tenant's role besides its own policy."""
    token_ttl: int = DEFAULT_TOKEN_TTL
    token_max_ttl: int = DEFAULT_TOKEN_MAX_TTL

    @property
    def policy_name(self) -> str:
        return f"{TENANT_PREFIX}{self.namespace}"

    @property
    def role_name(self) -> str:
        return f"{TENANT_PREFIX}{self.namespace}"


@dataclass(frozen=True)
class AclPolicySettings:
    """An extra named ACL policy: path -> capabilities."""

    name: str
    rules: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def policy_name(self) -> str:
        return f"{SHARED_PREFIX}{self.name}"


@dataclass(frozen=True)
class SecretEngineSettings:
    """A declared secrets engine at ``apps/<name>/``: its type and the tuning the reconciler keeps."""

    name: str
    type: str
    description: str = ""
    default_lease_ttl: int | None = None
    max_lease_ttl: int | None = None
    max_versions: int | None = None
    """KV v2 only: versions kept per secret (0 = OpenBao's default, 10)."""
    cas_required: bool | None = None
    """KV v2 only: every write must name the version it replaces."""

    @property
    def path(self) -> str:
        return f"{ENGINE_PREFIX}{self.name}"


@dataclass(frozen=True)
class ConfigurationSettings:
    """The declared configuration and how often the CronJob re-applies it (drift correction)."""

    tenants: tuple[TenantSettings, ...] = ()
    policies: tuple[AclPolicySettings, ...] = ()
    secret_engines: tuple[SecretEngineSettings, ...] = ()
    schedule: str = DEFAULT_SCHEDULE
    kv_mount: str = "secret"


def tenant_subtree(kv_mount: str, namespace: str) -> tuple[str, ...]:
    """A tenant's own KV v2 subtree (data and metadata): its default read and write paths."""
    return (f"{kv_mount}/data/tenants/{namespace}/*", f"{kv_mount}/metadata/tenants/{namespace}/*")


def seconds(value: Any) -> Any:
    """``90``, ``"90s"``, ``"15m"``, ``"1h"`` -> seconds; anything else is returned unchanged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        m = _DURATION.match(value.strip())
        if m:
            return int(m.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[m.group(2)]
    return value


def path_problem(path: str, kv_mount: str, namespace: str | None = None) -> str | None:
    """Why ``path`` may not be granted by a declared policy (None: it may)."""
    if not _PATH.match(path):
        return "is not an OpenBao API path (letters, digits, '_.-+' segments, '*' only at the end)"
    head = path.split("/", 1)[0]
    if head in ("sys", "auth"):
        return f"is under {head}/: declared policies never reach the server's own configuration or auth methods"
    if head == kv_mount:
        parts = path.split("/")
        if len(parts) > 2 and parts[1] in _KV_PATH_KINDS and path.split("/", 2)[2].startswith(OWNERSHIP_PATH.split("/")[0]):
            return "is the reconciler's ownership record"
        if namespace is not None and len(parts) > 3 and parts[1] in _KV_PATH_KINDS and parts[2] == "tenants" \
                and parts[3] != namespace:
            return f"is tenant {parts[3]}'s subtree"
    return None


def _dns_label(r: Any, path: str, value: str) -> bool:
    from openbao_platform.settings import _dns_label as check

    before = len(r.problems)
    check(r, path, value)
    return len(r.problems) == before


def _string_list(r: Any, path: str, value: Any, fix: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        r.fail(path, value, "must be a list of strings", fix)
        return ()
    return tuple(value)


def _duration(r: Any, path: str, value: Any, default: Any, bounds: tuple[int, int], example: str) -> Any:
    """A duration setting in seconds, within ``bounds``; ``default`` when absent or unreadable."""
    if value is None:
        return default
    s = seconds(value)
    if not isinstance(s, int) or isinstance(s, bool):
        r.fail(path, value, "is not a duration", "use seconds or a duration such as 15m or 1h")
        return default
    low, high = bounds
    if not low <= s <= high:
        r.fail(path, value, f"is outside {low}s-{high // 3600}h", f"use e.g. {example}")
    return s


def _ttl(r: Any, path: str, value: Any, default: int) -> int:
    return _duration(r, path, value, default, (MIN_TOKEN_TTL, MAX_TOKEN_TTL), "1h (tokens renew; keep them short)")


def _parse_policies(r: Any, kv_mount: str) -> tuple[AclPolicySettings, ...]:
    raw = r.get("policies", object, None, "")  # a mapping of names the user chooses: checked below
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        r.fail("policies", raw, "must be a mapping of policy names to {path: [capabilities]}",
               "write e.g. policies: {ci-read: {'secret/data/shared/*': [read]}}")
        return ()
    out = []
    for name, rules in raw.items():
        key = f"policies.{name}"
        if not isinstance(name, str) or not _POLICY_NAME.match(name):
            r.fail(key, name, "is not a policy name (lower-case letters, digits and '-', at most 50)", "use e.g. ci-read")
        if not isinstance(rules, Mapping) or not rules:
            r.fail(key, rules, "must be a non-empty mapping of paths to capability lists",
                   "write e.g. {'secret/data/shared/*': [read, list]}")
            continue
        parsed = []
        for path, caps in rules.items():
            _check_path(r, f"{key}.{path}", str(path), kv_mount, None)
            caps_t = _capabilities(r, f"{key}.{path}", caps)
            parsed.append((str(path), caps_t))
        out.append(AclPolicySettings(name=str(name), rules=tuple(sorted(parsed))))
    return tuple(sorted(out, key=lambda p: p.name))


def _check_path(r: Any, key: str, path: str, kv_mount: str, namespace: str | None) -> None:
    why = path_problem(path, kv_mount, namespace)
    if why:
        r.fail(key, path, why, f"grant paths of your own, e.g. {kv_mount}/data/tenants/<namespace>/*")


def _capabilities(r: Any, key: str, caps: Any) -> tuple[str, ...]:
    if not isinstance(caps, list) or not caps or not all(isinstance(c, str) for c in caps):
        r.fail(key, caps, "must be a non-empty list of capabilities", f"use some of {', '.join(CAPABILITIES)}")
        return ()
    for c in caps:
        if c not in CAPABILITIES:
            r.fail(key, c, "is not an OpenBao capability", f"use some of {', '.join(CAPABILITIES)}")
    if "deny" in caps and len(caps) > 1:
        r.fail(key, caps, "combines deny with other capabilities (deny overrides them all)", "use [deny] alone")
    return tuple(c for c in CAPABILITIES if c in caps)


_TENANT_KEYS = ["serviceAccounts", "read", "write", "policies", "tokenTtl", "tokenMaxTtl"]


def _parse_tenants(r: Any, own_namespace: str, kv_mount: str,
                   policies: tuple[AclPolicySettings, ...]) -> tuple[TenantSettings, ...]:
    raw = r.get("tenants", object, None, "")  # a mapping of namespaces: checked below
    if raw is None:
        return ()
    if not isinstance(raw, Mapping):
        r.fail("tenants", raw, "must be a mapping of namespaces to tenant settings",
               "write e.g. tenants: {team-a: {serviceAccounts: [app]}}")
        return ()
    declared = {p.name for p in policies}
    out = []
    for ns, body in raw.items():
        key = f"tenants.{ns}"
        ns = str(ns)
        _dns_label(r, key, ns)
        if ns == own_namespace:
            r.fail(key, ns, "is the OpenBao namespace itself", "declare only application namespaces")
        if not isinstance(body, Mapping):
            r.fail(key, body, "must be a mapping", f"write e.g. {{serviceAccounts: [app]}}; keys: {', '.join(_TENANT_KEYS)}")
            continue
        r.unknown_keys(key, _TENANT_KEYS)
        fix = "list the ServiceAccounts of the namespace that may log in, e.g. [app]"
        sas = _string_list(r, f"{key}.serviceAccounts", body.get("serviceAccounts"), fix)
        if not sas:
            r.fail(f"{key}.serviceAccounts", body.get("serviceAccounts"), "must list at least one ServiceAccount", fix)
        for sa in sas:
            if sa == "*" or "*" in sa:
                r.fail(f"{key}.serviceAccounts", sa, "binds every ServiceAccount of the namespace", fix)
            else:
                _dns_label(r, f"{key}.serviceAccounts", sa)
        if len(set(sas)) != len(sas):
            r.fail(f"{key}.serviceAccounts", list(sas), "lists a ServiceAccount twice", "list each once")
        default = tenant_subtree(kv_mount, ns)
        paths = {}
        for kind in ("read", "write"):
            given = _string_list(r, f"{key}.{kind}", body.get(kind), "list KV paths, e.g. [secret/data/tenants/<ns>/*]")
            for p in given:
                _check_path(r, f"{key}.{kind}", p, kv_mount, ns)
            paths[kind] = given if body.get(kind) is not None else default
        extra = _string_list(r, f"{key}.policies", body.get("policies"), "list names declared under `policies`")
        for p in extra:
            if p not in declared:
                r.fail(f"{key}.policies", p, "is not declared under `policies`", f"declare policies.{p} or remove it")
        ttl = _ttl(r, f"{key}.tokenTtl", body.get("tokenTtl"), DEFAULT_TOKEN_TTL)
        max_ttl = _ttl(r, f"{key}.tokenMaxTtl", body.get("tokenMaxTtl"), max(DEFAULT_TOKEN_MAX_TTL, ttl))
        if ttl > max_ttl:
            r.fail(f"{key}.tokenTtl", body.get("tokenTtl"), f"is longer than tokenMaxTtl ({max_ttl}s)",
                   "lower tokenTtl or raise tokenMaxTtl")
        out.append(TenantSettings(namespace=ns, service_accounts=tuple(sorted(sas)), read=tuple(sorted(paths["read"])),
                                  write=tuple(sorted(paths["write"])), policies=tuple(sorted(set(extra))),
                                  token_ttl=ttl, token_max_ttl=max_ttl))
    return tuple(sorted(out, key=lambda t: t.namespace))


_ENGINE_KEYS = ["type", "description", "defaultLeaseTtl", "maxLeaseTtl", "maxVersions", "casRequired"]
_KV_ONLY_KEYS = ("maxVersions", "casRequired")


def _lease_ttl(r: Any, path: str, value: Any) -> int | None:
    return _duration(r, path, value, None, (MIN_LEASE_TTL, MAX_LEASE_TTL), "768h")


def _parse_secret_engines(r: Any) -> tuple[SecretEngineSettings, ...]:
    raw = r.get("secretEngines", object, None, "")  # a mapping of names the user chooses: checked below
    if raw is None:
        return ()
    example = "write e.g. secretEngines: {payments-kv: {type: kv-v2}, orders-transit: {type: transit}}"
    if not isinstance(raw, Mapping):
        r.fail("secretEngines", raw, "must be a mapping of mount names to engine settings", example)
        return ()
    out = []
    for name, body in raw.items():
        key = f"secretEngines.{name}"
        if not isinstance(name, str) or not _POLICY_NAME.match(name):
            r.fail(key, name, "is not a mount name (lower-case letters, digits and '-', at most 50)",
                   f"use e.g. payments-kv (mounted at {ENGINE_PREFIX}payments-kv/)")
        if not isinstance(body, Mapping):
            r.fail(key, body, "must be a mapping", example)
            continue
        r.unknown_keys(key, _ENGINE_KEYS)
        kind = body.get("type")
        if kind not in ENGINE_TYPES:
            r.fail(f"{key}.type", kind, "is not a supported secrets engine type",
                   f"use one of {', '.join(ENGINE_TYPES)}")
        for k in _KV_ONLY_KEYS:
            if body.get(k) is not None and kind != "kv-v2":
                r.fail(f"{key}.{k}", body.get(k), f"applies to kv-v2 mounts only (this one is {kind})", f"remove {k}")
        description = body.get("description", "")
        if not isinstance(description, str) or any(ord(c) < 32 for c in description) or len(description) > 200:
            r.fail(f"{key}.description", description, "must be one line of text (at most 200 characters)",
                   "use e.g. 'payments team secrets'")
            description = ""
        default_ttl = _lease_ttl(r, f"{key}.defaultLeaseTtl", body.get("defaultLeaseTtl"))
        max_ttl = _lease_ttl(r, f"{key}.maxLeaseTtl", body.get("maxLeaseTtl"))
        if default_ttl is not None and max_ttl is not None and default_ttl > max_ttl:
            r.fail(f"{key}.defaultLeaseTtl", body.get("defaultLeaseTtl"), f"is longer than maxLeaseTtl ({max_ttl}s)",
                   "lower defaultLeaseTtl or raise maxLeaseTtl")
        versions = body.get("maxVersions")
        if versions is not None and (isinstance(versions, bool) or not isinstance(versions, int)
                                     or not 0 <= versions <= MAX_KV_VERSIONS):
            r.fail(f"{key}.maxVersions", versions, f"must be an integer 0-{MAX_KV_VERSIONS}", "use e.g. 10")
            versions = None
        cas = body.get("casRequired")
        if cas is not None and not isinstance(cas, bool):
            r.fail(f"{key}.casRequired", cas, "must be true or false", "use true to require check-and-set writes")
            cas = None
        out.append(SecretEngineSettings(name=str(name), type=str(kind), description=description,
                                        default_lease_ttl=default_ttl, max_lease_ttl=max_ttl,
                                        max_versions=versions, cas_required=cas))
    return tuple(sorted(out, key=lambda e: e.name))


def parse_configuration(r: Any, own_namespace: str, kv_mount: str) -> ConfigurationSettings:
    """``tenants``, ``policies``, ``secretEngines`` and ``configuration.schedule``; problems recorded on ``r``."""
    r.section("configuration")
    r.unknown_keys("configuration", ["schedule"])
    schedule = r.get("configuration.schedule", str, DEFAULT_SCHEDULE, "use a five-field cron expression, e.g. '*/30 * * * *'")
    if not is_five_field_cron(schedule):
        r.fail("configuration.schedule", schedule, "is not a five-field cron expression",
               "use e.g. '*/30 * * * *' (every 30 minutes)")
    policies = _parse_policies(r, kv_mount)
    tenants = _parse_tenants(r, own_namespace, kv_mount, policies)
    engines = _parse_secret_engines(r)
    return ConfigurationSettings(tenants=tenants, policies=policies, secret_engines=engines, schedule=schedule,
                                 kv_mount=kv_mount)


# ---- the desired state: one file per object, as the ConfigMap holds it --------------------


def policy_hcl(header: str, rules: Mapping[str, tuple[str, ...]]) -> str:
    """An ACL policy in HCL (paths and capabilities are validated, so nothing needs escaping)."""
    lines = [f"# {header}", "# Managed by openbao-platform (reconcile.sh): edits by hand are reverted."]
    for path in sorted(rules):
        caps = ", ".join(f'"{c}"' for c in CAPABILITIES if c in rules[path])
        lines += [f'path "{path}" {{', f"  capabilities = [{caps}]", "}"]
    return "\n".join(lines) + "\n"


def tenant_rules(t: TenantSettings) -> dict[str, tuple[str, ...]]:
    rules: dict[str, set[str]] = {}
    for p in t.read:
        rules.setdefault(p, set()).update(READ_CAPABILITIES)
    for p in t.write:
        rules.setdefault(p, set()).update(WRITE_CAPABILITIES)
    return {p: tuple(c for c in CAPABILITIES if c in caps) for p, caps in rules.items()}


def role_lines(t: TenantSettings) -> str:
    """The role file: key=value lines the reconciler passes to `bao write auth/kubernetes/role/<name>`."""
    policies = [t.policy_name, *(f"{SHARED_PREFIX}{p}" for p in t.policies)]
    return "\n".join([
        f"bound_service_account_names={','.join(t.service_accounts)}",
        f"bound_service_account_namespaces={t.namespace}",
        f"token_policies={','.join(policies)}",
        f"token_ttl={t.token_ttl}",
        f"token_max_ttl={t.token_max_ttl}",
    ]) + "\n"


def mount_lines(e: SecretEngineSettings) -> str:
    """The mount file: key=value lines; only what is declared is enforced (the rest stays as OpenBao sets it)."""
    values: list[tuple[str, Any]] = [("type", e.type), ("description", e.description or None),
                                     ("default_lease_ttl", e.default_lease_ttl), ("max_lease_ttl", e.max_lease_ttl),
                                     ("max_versions", e.max_versions), ("cas_required", e.cas_required)]
    lines = [f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in values if v is not None]
    return "\n".join(lines) + "\n"


def desired_state(c: ConfigurationSettings) -> dict[str, str]:
    """Every managed object as a ConfigMap entry: ``mount.<name>``, ``policy.<name>.hcl`` and ``role.<name>``."""
    files: dict[str, str] = {}
    for e in c.secret_engines:
        files[f"mount.{e.name}"] = mount_lines(e)
    for p in c.policies:
        files[f"policy.{p.policy_name}.hcl"] = policy_hcl(f"extra policy {p.name}", dict(p.rules))
    for t in c.tenants:
        files[f"policy.{t.policy_name}.hcl"] = policy_hcl(f"tenant {t.namespace}", tenant_rules(t))
        files[f"role.{t.role_name}"] = role_lines(t)
    return dict(sorted(files.items()))
