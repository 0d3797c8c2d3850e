"""OpenBao server options the production-hardening guidance warns about.

Wherever an OpenBao JSON config is carried (ConfigMap, Secret, a workload's env or args):

* ``raw_storage_endpoint`` must not be on: ``sys/raw`` reads and writes the storage
  backend below the barrier's policy checks (keyring included, with sudo);
* ``unsafe_allow_api_audit_creation`` must not be on: audit devices are declared in the
  config (OpenBao refuses API creation by default), so a token holder cannot add a device
  that writes requests somewhere else or remove the ones operators rely on.
"""

from __future__ import annotations

from typing import Iterator

from ._k8s import WORKLOAD_KINDS, K8sObject, openbao_configs
from ._rules import Config, resource_rule

#: option -> why it must stay off.
UNSAFE_OPTIONS = {
    "raw_storage_endpoint": "sys/raw exposes the storage backend below the ACL checks",
    "unsafe_allow_api_audit_creation": "audit devices must stay declarative (a token could add or remove one)",
}


def _on(value: object) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def check_server_options(obj: K8sObject, cfg: Config) -> Iterator[str]:
    for doc in openbao_configs(obj):
        for option, why in UNSAFE_OPTIONS.items():
            if _on(doc.config.get(option)):
                yield (f"{obj.ref}: {doc.where} sets {option} = {doc.config.get(option)!r}: {why}. "
                       f"Fix: remove {option} from the server config.")


POLICIES = [
    resource_rule(
        "openbao-server-hardening",
        "No OpenBao server config turns on raw_storage_endpoint (sys/raw) or unsafe_allow_api_audit_creation.",
        "critical", ("ConfigMap", "Secret", *sorted(WORKLOAD_KINDS)), check_server_options),
]
