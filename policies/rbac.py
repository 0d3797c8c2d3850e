"""RBAC: least privilege for every Role, binding and ServiceAccount token.

OpenBao needs very little from the Kubernetes API: pods get/update/patch for service
registration, and TokenReview (system:auth-delegator) for the kubernetes auth method.
Anything broader turns a compromised pod into a cluster compromise, so wildcards,
privilege-escalation verbs, secret reads and broad bindings are refused, and a pod only
gets an API token when its ServiceAccount is on the list of those that need one.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional, Sequence

from ._k8s import K8sObject, WORKLOAD_KINDS, as_list, as_str_list, fmt, get_path, objects_of_kind, pod_template
from ._rules import Config, resource_rule, stack_rule

ROLE_KINDS = ("Role", "ClusterRole")
BINDING_KINDS = ("RoleBinding", "ClusterRoleBinding")

#: Verbs that let a subject grant itself more than it has.
ESCALATION_VERBS = ("escalate", "bind", "impersonate")
#: (resource, verbs or None for any verb): core-group subresources that amount to node or pod takeover.
DANGEROUS_RESOURCES: tuple[tuple[str, Optional[tuple[str, ...]]], ...] = (
    ("serviceaccounts/token", ("create",)),
    ("pods/exec", None),
    ("pods/attach", None),
    ("nodes/proxy", None),
)
READ_VERBS = ("get", "list", "watch")
#: Groups and users that mean "everyone" or "root" to the API server.
FORBIDDEN_SUBJECTS = {
    "Group": ("system:masters", "system:anonymous", "system:unauthenticated", "system:authenticated",
              "system:serviceaccounts"),
    "User": ("system:anonymous",),
}
#: Built-in ClusterRoles that include reading Secrets.
SECRET_READING_BUILTINS = ("cluster-admin", "admin", "edit")


def _rules(obj: K8sObject) -> list[tuple[int, Mapping[str, Any]]]:
    """(index, PolicyRule) of a Role or ClusterRole."""
    return [(i, r) for i, r in enumerate(as_list(obj.props.get("rules"))) if isinstance(r, Mapping)]


def _grants(rule: Mapping[str, Any], resource: str, verbs: Optional[Sequence[str]], group: str = "") -> bool:
    """Whether a PolicyRule grants any of ``verbs`` (None: any verb) on ``resource``."""
    groups, resources, rule_verbs = (as_str_list(rule.get(k)) for k in ("apiGroups", "resources", "verbs"))
    if group not in groups and "*" not in groups:
        return False
    if resource not in resources and "*" not in resources:
        return False
    if not rule_verbs:
        return False
    return verbs is None or "*" in rule_verbs or any(v in rule_verbs for v in verbs)


def check_wildcards(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """No '*' in any rule's verbs, resources, apiGroups or nonResourceURLs."""
    for i, rule in _rules(obj):
        for field in ("verbs", "resources", "apiGroups", "nonResourceURLs"):
            for value in as_str_list(rule.get(field)):
                if "*" in value:
                    yield (f"{obj.ref}: rules[{i}].{field} contains {fmt(value)}, which also grants everything "
                           f"added to the API later. Fix: list the exact {field} the workload needs.")


def check_escalation(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """No verbs or subresources that escalate privileges or reach into pods and nodes."""
    for i, rule in _rules(obj):
        verbs = as_str_list(rule.get("verbs"))
        for verb in ESCALATION_VERBS:
            if verb in verbs:
                yield (f"{obj.ref}: rules[{i}].verbs contains {fmt(verb)}, which lets the holder grant itself "
                       f"more privileges. Fix: remove {fmt(verb)}.")
        for resource, risky in DANGEROUS_RESOURCES:
            if _grants(rule, resource, risky):
                what = f"{'/'.join(risky)} on" if risky else "access to"
                yield (f"{obj.ref}: rules[{i}] grants {what} {resource}, which amounts to running code as "
                       f"another identity or on the node. Fix: remove {resource} from rules[{i}].resources.")


def _role_for(binding: K8sObject, roles: Sequence[K8sObject]) -> Optional[K8sObject]:
    """The Role/ClusterRole in the stack that a binding's roleRef names, if any."""
    kind, name = get_path(binding.props, "roleRef", "kind"), get_path(binding.props, "roleRef", "name")
    for role in roles:
        same_scope = kind == "ClusterRole" or role.namespace == binding.namespace
        if role.kind == kind and role.object_name == name and same_scope:
            return role
    return None


def _service_account_subjects(binding: K8sObject) -> list[str]:
    """"<ns>/<name>" of every ServiceAccount a binding grants to."""
    return [f"{get_path(s, 'namespace') or binding.namespace}/{get_path(s, 'name')}"
            for s in as_list(binding.props.get("subjects")) if get_path(s, "kind") == "ServiceAccount"]


def check_workload_secret_read(objects: Sequence[K8sObject], cfg: Config) -> Iterator[tuple[K8sObject, str]]:
    """No ServiceAccount is bound to a role that can get, list or watch Secrets."""
    roles = objects_of_kind(objects, *ROLE_KINDS)
    for binding in objects_of_kind(objects, *BINDING_KINDS):
        accounts = _service_account_subjects(binding)
        if not accounts:
            continue
        role_name = get_path(binding.props, "roleRef", "name")
        role = _role_for(binding, roles)
        if role is None:
            if get_path(binding.props, "roleRef", "kind") == "ClusterRole" and role_name in SECRET_READING_BUILTINS:
                yield binding, (f"{binding.ref}: roleRef ClusterRole {role_name} includes reading Secrets and is bound "
                                f"to ServiceAccount(s) {', '.join(accounts)}. Fix: bind a Role without secrets access; "
                                f"mount the Secrets the pod needs as files.")
            continue
        for i, rule in _rules(role):
            if _grants(rule, "secrets", READ_VERBS):
                yield binding, (f"{binding.ref}: binds ServiceAccount(s) {', '.join(accounts)} to {role.ref}, whose "
                                f"rules[{i}] grants {'/'.join(READ_VERBS)} on secrets. Fix: drop secrets from that "
                                f"rule; mount the Secrets the pod needs as files.")


def check_privileged_bindings(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """No binding to cluster-admin, and no subject that means everyone (or root)."""
    if get_path(obj.props, "roleRef", "name") == "cluster-admin":
        yield (f"{obj.ref}: roleRef is ClusterRole cluster-admin. Fix: bind a Role with only the verbs and "
               f"resources the subject needs.")
    for i, subject in enumerate(as_list(obj.props.get("subjects"))):
        kind, name = get_path(subject, "kind"), get_path(subject, "name")
        if name in FORBIDDEN_SUBJECTS.get(kind, ()):
            yield (f"{obj.ref}: subjects[{i}] is {kind} {name}, which grants the role to every such identity. "
                   f"Fix: bind the specific ServiceAccount instead.")


def check_default_service_account(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """The namespace's `default` ServiceAccount never gets permissions."""
    for i, subject in enumerate(as_list(obj.props.get("subjects"))):
        if get_path(subject, "kind") == "ServiceAccount" and get_path(subject, "name") == "default":
            yield (f"{obj.ref}: subjects[{i}] is ServiceAccount \"default\", which every pod without its own "
                   f"account runs as. Fix: create a dedicated ServiceAccount and bind that.")


CRB_CONFIG = {
    "allowedClusterRoles": {
        "type": "array", "items": {"type": "string"}, "default": ["system:auth-delegator"],
        "description": "ClusterRoles a ClusterRoleBinding may reference (the kubernetes auth method needs "
                       "system:auth-delegator for TokenReview).",
    },
}


def check_crb_allowlist(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """ClusterRoleBindings reference only allow-listed ClusterRoles."""
    name = get_path(obj.props, "roleRef", "name")
    if name not in cfg["allowedClusterRoles"]:
        yield (f"{obj.ref}: roleRef ClusterRole {fmt(name)} is not in allowedClusterRoles "
               f"({', '.join(cfg['allowedClusterRoles'])}); cluster-wide grants are reviewed one by one. "
               f"Fix: use a namespaced Role and RoleBinding, or add the role to the policy config after review.")


AUTOMOUNT_CONFIG = {
    "apiServiceAccounts": {
        "type": "array", "items": {"type": "string"}, "default": ["openbao", "openbao-backup"],
        "description": "ServiceAccounts whose pods need an API token (OpenBao service registration and "
                       "kubernetes auth login; the backup job's login).",
    },
}


def check_automount(obj: K8sObject, cfg: Config) -> Iterator[str]:
    """Pods get a ServiceAccount token only when their account needs the API."""
    allowed = set(cfg["apiServiceAccounts"])
    if obj.kind == "ServiceAccount":
        if obj.object_name not in allowed and obj.props.get("automountServiceAccountToken") is not False:
            yield (f"{obj.ref}: automountServiceAccountToken is "
                   f"{fmt(obj.props.get('automountServiceAccountToken', 'unset (true)'))}, so every pod using it "
                   f"gets an API token. Fix: set automountServiceAccountToken: false "
                   f"(or add it to apiServiceAccounts).")
        return
    pod = pod_template(obj)
    if pod is None:
        return
    account = pod.spec.get("serviceAccountName") or pod.spec.get("serviceAccount") or "default"
    if account not in allowed and pod.spec.get("automountServiceAccountToken") is not False:
        yield (f"{obj.ref}: {pod.path}.automountServiceAccountToken is "
               f"{fmt(pod.spec.get('automountServiceAccountToken', 'unset (true)'))} for ServiceAccount "
               f"{fmt(account)}, which does not need the API. Fix: set automountServiceAccountToken: false "
               f"(or add the account to apiServiceAccounts).")


POLICIES = [
    resource_rule(
        "rbac-no-wildcards",
        "No '*' in any Role/ClusterRole rule (verbs, resources, apiGroups, nonResourceURLs), in every rule.",
        "high", ROLE_KINDS, check_wildcards),
    resource_rule(
        "rbac-no-privilege-escalation",
        "No escalate, bind or impersonate verbs; no create on serviceaccounts/token; nothing on pods/exec, "
        "pods/attach or nodes/proxy.",
        "critical", ROLE_KINDS, check_escalation),
    stack_rule(
        "rbac-no-workload-secret-read",
        "No ServiceAccount is bound to a role that can get/list/watch Secrets (mount them as files).",
        "high", check_workload_secret_read),
    resource_rule(
        "rbac-no-privileged-bindings",
        "No binding to cluster-admin or to system:masters, system:anonymous, system:unauthenticated, "
        "system:authenticated or system:serviceaccounts.",
        "critical", BINDING_KINDS, check_privileged_bindings),
    resource_rule(
        "rbac-no-default-serviceaccount",
        "No RoleBinding or ClusterRoleBinding grants anything to a `default` ServiceAccount.",
        "medium", BINDING_KINDS, check_default_service_account),
    resource_rule(
        "rbac-clusterrolebinding-allowlist",
        "ClusterRoleBindings only reference allow-listed ClusterRoles (default: system:auth-delegator).",
        "high", ("ClusterRoleBinding",), check_crb_allowlist, CRB_CONFIG),
    resource_rule(
        "serviceaccount-token-automount",
        "automountServiceAccountToken is false on pods and ServiceAccounts unless the account is in "
        "apiServiceAccounts (default: openbao, openbao-backup).",
        "medium", ("ServiceAccount", *sorted(WORKLOAD_KINDS)), check_automount, AUTOMOUNT_CONFIG),
]
