"""Representative stacks for testing the network and edge builders without the renderer.

They mirror what the prod and dev stacks look like (production with nginx or the
Gateway API, client namespaces, monitoring, backups; dev with one replica and nothing
published) so the schema and checkov tests cover every branch of the builders.
"""

from __future__ import annotations

from typing import Any

from openbao_platform import edge, network
from openbao_platform.platform import edge_args, network_args
from openbao_platform.settings import Settings, parse_settings

#: A syntactically plausible PEM; schema checks and checkov do not parse it.
SAMPLE_CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIBsample\n-----END CERTIFICATE-----\n"

_PROD: dict[str, Any] = {
    "production": True,
    "replicas": 3,
    "network": {"clientNamespaces": ["payments", "web"], "kubeApiCidrs": ["10.0.0.5/32", "10.0.0.6/32"],
                "kubeApiPort": 6443},
    "monitoring": {"enabled": True},
}

SAMPLE_STACKS: dict[str, dict[str, Any]] = {
    "prod-nginx": {**_PROD, "ingress": {"mode": "nginx", "host": "bao.example.com",
                                        "certManagerIssuer": "letsencrypt", "externalDns": True}},
    "prod-nginx-secret": {**_PROD, "tlsMinVersion": "tls13",
                          "ingress": {"mode": "nginx", "host": "bao.example.com", "tlsSecretName": "bao-public",
                                      "certManagerIssuerKind": "Issuer"}},
    "prod-gateway": {**_PROD, "ingress": {"mode": "gateway", "host": "bao.example.com",
                                          "certManagerIssuer": "letsencrypt", "gatewayName": "public",
                                          "gatewayNamespace": "gateways"}},
    "dev": {"replicas": 1, "backup": {"enabled": False}},
    "prod-s3": {**_PROD, "backup": {"remote": {
        "enabled": True, "endpoint": "https://minio.storage.example:9000", "bucket": "openbao-backups",
        "endpointCidrs": ["10.20.0.0/24"], "endpointPort": 9000,
        "serviceAccountAnnotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::123456789012:role/openbao-backup"}}}},
}


def sample_settings(stack: str) -> Settings:
    """Validated settings of one sample stack."""
    return parse_settings(SAMPLE_STACKS[stack], stack.split("-")[0])


def builder_objects(settings: Settings) -> list[dict[str, Any]]:
    """Every object network.py and edge.py build for these settings."""
    return [*network.network_policies(network.network_spec(network_args(settings))).values(),
            *edge.edge_objects(edge.edge_spec(edge_args(settings, SAMPLE_CA_PEM)), SAMPLE_CA_PEM).values()]
