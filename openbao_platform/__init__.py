"""openbao-platform: reusable Pulumi components for highly available OpenBao on Kubernetes.

Each component takes narrow, typed args (a TypedDict per component) and never reads stack
config, so a program can use just the pieces it needs::

    from openbao_platform import ClusterPki, OpenBaoCluster, UnsealKey

The same components are served to every other Pulumi language by the plugin in provider/.
"""

from openbao_platform.backup import OpenBaoBackup, OpenBaoBackupArgs
from openbao_platform.cluster import OpenBaoCluster, OpenBaoClusterArgs
from openbao_platform.configuration import OpenBaoConfiguration, OpenBaoConfigurationArgs
from openbao_platform.credentials import BootstrapCredentials, BootstrapCredentialsArgs
from openbao_platform.edge import OpenBaoEdge, OpenBaoEdgeArgs
from openbao_platform.monitoring import OpenBaoMonitoring, OpenBaoMonitoringArgs
from openbao_platform.naming import ClusterNames
from openbao_platform.network import OpenBaoNetworkPolicies, OpenBaoNetworkPoliciesArgs
from openbao_platform.pki import ClusterPki, ClusterPkiArgs, server_dns_names
from openbao_platform.settings import ArgsError
from openbao_platform.unseal import UnsealKey, UnsealKeyArgs

__all__ = [
    "ArgsError", "BootstrapCredentials", "BootstrapCredentialsArgs", "ClusterNames", "ClusterPki", "ClusterPkiArgs",
    "OpenBaoBackup", "OpenBaoBackupArgs", "OpenBaoCluster", "OpenBaoClusterArgs",
    "OpenBaoConfiguration", "OpenBaoConfigurationArgs", "OpenBaoEdge", "OpenBaoEdgeArgs",
    "OpenBaoMonitoring", "OpenBaoMonitoringArgs", "OpenBaoNetworkPolicies", "OpenBaoNetworkPoliciesArgs",
    "UnsealKey", "UnsealKeyArgs", "server_dns_names",
]
