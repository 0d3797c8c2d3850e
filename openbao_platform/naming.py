"""Every name derived from a cluster's ``name`` and ``namespace``, in one place.

Services, pod DNS names, Secret names and labels must agree across the certificate SANs,
the StatefulSet, the NetworkPolicies and the edge: each component derives them from the
same two values through this mixin, whether it got them from the stack settings or from
its own args.
"""

from __future__ import annotations

from dataclasses import dataclass


class NamedCluster:
    """Derived names; the class using it provides ``name`` and ``namespace``."""

    name: str
    namespace: str

    @property
    def headless_service(self) -> str:
        return f"{self.name}-internal"

    @property
    def active_service(self) -> str:
        return f"{self.name}-active"

    @property
    def standby_service(self) -> str:
        return f"{self.name}-standby"

    @property
    def api_service(self) -> str:
        return self.name

    def pod_dns_name(self, ordinal: int) -> str:
        """The stable DNS name a pod is reached by (and which its cert names)."""
        return f"{self.name}-{ordinal}.{self.headless_service}.{self.namespace}.svc"

    def service_dns_name(self, service: str) -> str:
        return f"{service}.{self.namespace}.svc"

    @property
    def ca_bundle_name(self) -> str:
        """Secret (and, in gateway mode, ConfigMap) holding only the public CA as ca.crt."""
        return f"{self.name}-ca"

    @property
    def active_dns_name(self) -> str:
        return self.service_dns_name(self.active_service)

    @property
    def selector_labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": "openbao", "app.kubernetes.io/instance": self.name}

    @property
    def common_labels(self) -> dict[str, str]:
        return {
            **self.selector_labels,
            "app.kubernetes.io/managed-by": "pulumi",
            "app.kubernetes.io/part-of": "openbao-platform",
        }


@dataclass(frozen=True)
class ClusterNames(NamedCluster):
    """A cluster's identity: what a component needs to agree on names with the others."""

    name: str
    """Name of the StatefulSet and prefix of every object."""
    namespace: str
    """Kubernetes namespace of the cluster."""
