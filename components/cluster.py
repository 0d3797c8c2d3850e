"""OpenBaoCluster: identity, RBAC, config, Services, the StatefulSet and its PDB.

The objects are built by ``cluster_manifests`` (pure dicts) and registered here with the
typed pulumi-kubernetes classes, children of this component.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import pulumi
import pulumi_kubernetes as k8s

from components import cluster_manifests as m
from components.k8s_args import typed_kwargs as _body
from components.lifecycle import STATEFULSET_TIMEOUTS, stateful
from components.server_config import config_files
from components.settings import Settings


@dataclass(frozen=True)
class OpenBaoClusterArgs:
    """Inputs of OpenBaoCluster: settings plus the Secrets other components own."""

    settings: Settings
    tls_secret_name: pulumi.Input[str]
    unseal_secret_name: pulumi.Input[str]
    init_secret_name: Optional[pulumi.Input[str]] = None


class OpenBaoCluster(pulumi.ComponentResource):
    """The HA OpenBao server on Raft storage."""

    stateful_set_name: pulumi.Output[str]
    """Name of the StatefulSet (also the pod name prefix)."""
    service_names: dict[str, str]
    """Role -> Service name: api, active, standby, headless."""
    service_account_name: str
    """The server pods' ServiceAccount."""
    admin_service_account_name: str
    """The ServiceAccount bound to the `admin` kubernetes auth role."""

    def __init__(self, name: str, args: OpenBaoClusterArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("openbao:cluster:OpenBaoCluster", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        files = config_files(s)

        sa = k8s.core.v1.ServiceAccount(f"{name}-sa", **_body(m.service_account(s, m.server_service_account(s), True)),
                                        opts=child)
        k8s.core.v1.ServiceAccount(f"{name}-admin-sa",
                                   **_body(m.service_account(s, s.self_init.admin_service_account, False)), opts=child)
        role = k8s.rbac.v1.Role(f"{name}-role", **_body(m.role(s)), opts=child)
        k8s.rbac.v1.RoleBinding(f"{name}-rolebinding", **_body(m.role_binding(s)),
                                opts=pulumi.ResourceOptions(parent=self, depends_on=[role, sa]))
        k8s.rbac.v1.ClusterRoleBinding(f"{name}-auth-delegator", **_body(m.auth_delegator_binding(s)),
                                       opts=pulumi.ResourceOptions(parent=self, depends_on=[sa]))
        config = k8s.core.v1.ConfigMap(f"{name}-config", **_body(m.config_map(s, files)), opts=child)
        for svc in m.services(s):
            k8s.core.v1.Service(f"{name}-svc-{svc['metadata']['name']}", **_body(svc), opts=child)

        def statefulset_spec(secrets: list[Any]) -> dict[str, Any]:
            tls_name, unseal_name, init_name = secrets
            return m.stateful_set(s, files, tls_name, unseal_name, init_name)["spec"]

        sts_obj = m.stateful_set(s, files, "", "", None)
        # A replacement would delete every voter at once: protected, orphaning on delete, and
        # given the time a real multi-zone bring-up takes (components/lifecycle.py).
        sts = k8s.apps.v1.StatefulSet(
            f"{name}-statefulset",
            metadata=sts_obj["metadata"],
            spec=pulumi.Output.all(args.tls_secret_name, args.unseal_secret_name, args.init_secret_name)
            .apply(statefulset_spec),
            opts=stateful(self, s.protect, depends_on=[config, sa], custom_timeouts=STATEFULSET_TIMEOUTS),
        )
        pdb = m.pod_disruption_budget(s)
        if pdb is not None:
            k8s.policy.v1.PodDisruptionBudget(f"{name}-pdb", **_body(pdb), opts=child)

        self.stateful_set_name = sts.metadata.name
        self.service_names = {"api": s.api_service, "active": s.active_service,
                              "standby": s.standby_service, "headless": s.headless_service}
        self.service_account_name = m.server_service_account(s)
        self.admin_service_account_name = s.self_init.admin_service_account
        self.register_outputs({"stateful_set_name": self.stateful_set_name, "service_names": self.service_names,
                               "service_account_name": self.service_account_name,
                               "admin_service_account_name": self.admin_service_account_name})
