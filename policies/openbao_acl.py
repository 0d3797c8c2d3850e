"""OpenBao's own RBAC, reviewed where it is declared: the desired-state ConfigMap.

OpenBaoConfiguration ships one item per object (``policy.<name>.hcl``: an ACL policy;
``role.<name>``: a kubernetes auth role as key=value lines) and a Job applies them in the
cluster, so a review of the ConfigMap is a review of what tenants will be able to do:

* no declared policy grants ``sudo``, anything under ``sys/`` or ``auth/`` (or a leading
  wildcard that covers them), and a tenant's policy (``policy.tenant-<ns>.hcl``) never
  reaches another tenant's subtree (``<mount>/<data|metadata|...>/tenants/<other>/``);
* no role binds ``*`` (or nothing) as ServiceAccount names or namespaces;
* token TTLs stay within ``maxTokenTtlSeconds`` (default 24 h), and ``token_ttl`` ≤
  ``token_max_ttl``.
"""

from __future__ import annotations

import re
from typing import Iterator, Mapping

from ._k8s import K8sObject, known_value
from ._rules import Config, resource_rule

_PATH_BLOCK = re.compile(r'path\s+"([^"]*)"\s*\{([^}]*)\}', re.DOTALL)
_CAPS = re.compile(r"capabilities\s*=\s*\[([^\]]*)\]")
_KV_TENANT = re.compile(r"^[^/]+/(?:data|metadata|delete|undelete|destroy)/tenants/([^/]+)")
DEFAULT_MAX_TTL = 86400


def _items(obj: K8sObject, prefix: str) -> Iterator[tuple[str, str]]:
    """(key, value) of the data items named ``prefix*``; other items' values are never read,
    so a ConfigMap whose unrelated values are unknown in a preview is still fully judged."""
    mapping = known_value(obj.props, "data")
    for key in mapping if isinstance(mapping, Mapping) else ():
        if str(key).startswith(prefix):
            value = known_value(mapping, key)
            if isinstance(value, str):
                yield str(key), value


def _policies(obj: K8sObject) -> Iterator[tuple[str, str, str]]:
    """(item, policy name, text) of every declared ACL policy in a ConfigMap."""
    for key, value in _items(obj, "policy."):
        if key.endswith(".hcl"):
            yield key, key[len("policy."):-len(".hcl")], value


def _roles(obj: K8sObject) -> Iterator[tuple[str, dict[str, str]]]:
    for key, value in _items(obj, "role."):
        yield key, dict(line.split("=", 1) for line in value.splitlines() if "=" in line)


def check_acl(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """No sudo, nothing on sys/ or auth/, no other tenant's subtree."""
    for key, name, text in _policies(obj):
        blocks = _PATH_BLOCK.findall(text)
        if not blocks:
            yield f"{obj.ref}: data[{key}] declares no path block this rule can read. Fix: write `path \"...\" {{ capabilities = [...] }}` blocks."
        tenant = name[len("tenant-"):] if name.startswith("tenant-") else None
        for path, body in blocks:
            caps = re.findall(r'"([^"]+)"', (_CAPS.search(body) or [None, ""])[1]) if _CAPS.search(body) else []
            if "sudo" in caps:
                yield (f"{obj.ref}: data[{key}] grants sudo on \"{path}\"; sudo reaches root-protected endpoints. "
                       f"Fix: drop sudo (an operator logs in as admin for that).")
            head = path.split("/", 1)[0]
            if head in ("sys", "auth") or head.startswith(("*", "+")) or path.startswith(("sys*", "auth*")):
                yield (f"{obj.ref}: data[{key}] grants {caps} on \"{path}\", which covers the server's own "
                       f"configuration or auth methods (sys/, auth/). Fix: grant only secret-engine paths.")
            m = _KV_TENANT.match(path)
            if tenant is not None and m and m.group(1) != tenant:
                yield (f"{obj.ref}: data[{key}] (tenant {tenant}) grants {caps} on \"{path}\", tenant "
                       f"{m.group(1)}'s subtree. Fix: grant the tenant its own subtree only.")


def check_role_bindings(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Every kubernetes auth role binds named ServiceAccounts in named namespaces."""
    for key, fields in _roles(obj):
        for field in ("bound_service_account_names", "bound_service_account_namespaces"):
            values = [v.strip() for v in fields.get(field, "").split(",") if v.strip()]
            if not values or any("*" in v for v in values):
                yield (f"{obj.ref}: data[{key}] {field} is {values or 'empty'}; a wildcard lets any "
                       f"ServiceAccount or namespace log in. Fix: list the exact names.")


def check_token_ttls(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """token_ttl and token_max_ttl within the configured bound, and ttl <= max."""
    bound = int(cfg.get("maxTokenTtlSeconds", DEFAULT_MAX_TTL))
    for key, fields in _roles(obj):
        ttls = {}
        for field in ("token_ttl", "token_max_ttl"):
            raw = fields.get(field, "")
            if not raw.isdigit():
                yield f"{obj.ref}: data[{key}] {field} is {raw or 'missing'}, not seconds. Fix: set it in seconds."
                continue
            ttls[field] = int(raw)
            if not 0 < int(raw) <= bound:
                yield (f"{obj.ref}: data[{key}] {field} is {raw}s, outside 1-{bound}s. Fix: shorten it "
                       f"(tokens renew), or raise maxTokenTtlSeconds in the policy config with a reason.")
        if len(ttls) == 2 and ttls["token_ttl"] > ttls["token_max_ttl"]:
            yield f"{obj.ref}: data[{key}] token_ttl exceeds token_max_ttl. Fix: lower token_ttl."


POLICIES = [
    resource_rule(
        "openbao-acl-least-privilege",
        "Declared OpenBao ACL policies (ConfigMap items policy.<name>.hcl) grant no sudo, nothing under sys/ or "
        "auth/, and a tenant's policy never reaches another tenant's subtree.",
        "critical", ("ConfigMap",), check_acl),
    resource_rule(
        "openbao-auth-role-bound",
        "Declared kubernetes auth roles (ConfigMap items role.<name>) bind named ServiceAccounts in named "
        "namespaces, never '*'.",
        "critical", ("ConfigMap",), check_role_bindings),
    resource_rule(
        "openbao-token-ttl-bounds",
        "Declared kubernetes auth roles issue tokens within maxTokenTtlSeconds (default 86400), token_ttl <= "
        "token_max_ttl.",
        "high", ("ConfigMap",), check_token_ttls,
        config={"maxTokenTtlSeconds": {"type": "integer", "default": DEFAULT_MAX_TTL,
                                       "description": "Longest token_ttl / token_max_ttl a declared role may "
                                                      "issue, seconds (the settings allow at most 86400)."}}),
]
