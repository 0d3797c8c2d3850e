"""The OpenBaoCluster spec a stack's settings map to, for tests and tools that call the pure builders.

Built the way the platform builds it (``openbao_platform.platform.cluster_args``, then the
component's own validation), so a builder under test sees exactly what the stack deploys.
The Secret names are the ones ClusterPki, UnsealKey and BootstrapCredentials create.
"""

from __future__ import annotations

from typing import Any, Mapping

from openbao_platform.cluster import cluster_spec
from openbao_platform.platform import cluster_args
from openbao_platform.server_config import ClusterSpec
from openbao_platform.settings import Settings, parse_settings


def spec_of(settings: Settings) -> ClusterSpec:
    """The validated cluster spec of ``settings``."""
    n = settings.name
    return cluster_spec(cluster_args(settings, f"{n}-tls", f"{n}-unseal", f"{n}-init"))


def stack_spec(raw: Mapping[str, Any], stack: str = "t") -> ClusterSpec:
    """The cluster spec of a raw stack config (``Pulumi.<stack>.yaml`` values, or a test's own)."""
    return spec_of(parse_settings(raw, stack))
