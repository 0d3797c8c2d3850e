"""docs/tenants.md: its stack-config example parses, and its tenant manifest is valid Kubernetes
(1.35 schema), Pod Security "restricted"-shaped, and agrees with what the platform creates
(role name, API address, the tenant's own KV subtree)."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

from openbao_platform.configuration import configuration_spec, reconcile_environment
from openbao_platform.platform import configuration_args
from openbao_platform.settings import parse_settings
from tests.schema.kube_schema import validation_errors
from tests.support.program import stack_config

DOC = Path(__file__).resolve().parents[1] / "docs" / "tenants.md"
_BLOCK = re.compile(r"```yaml\n(.*?)```", re.DOTALL)


def _blocks() -> list[str]:
    return _BLOCK.findall(DOC.read_text())


def manifest() -> list[dict[str, Any]]:
    text = DOC.read_text()
    marker = text.index("<!-- example: tenant-manifest -->")
    (first,) = _BLOCK.findall(text[marker:])[:1]
    return [d for d in yaml.safe_load_all(first) if d]


def test_stack_config_example_parses() -> None:
    doc = yaml.safe_load(_blocks()[0])["config"]
    raw = {**copy.deepcopy(stack_config("prod")),
           **{k.split(":", 1)[1]: v for k, v in doc.items()}}
    s = parse_settings(raw, "prod")
    assert [t.namespace for t in s.configuration.tenants] == ["team-a", "team-b"]
    assert s.configuration.tenants[1].write == () and s.configuration.tenants[1].policies == ("ci-read",)


def test_tenant_manifest_is_valid_and_restricted() -> None:
    objs = manifest()
    assert [o["kind"] for o in objs] == ["ServiceAccount", "ConfigMap", "Deployment"]
    for obj in objs:
        assert validation_errors(obj) == [], validation_errors(obj)
    pod = objs[2]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"] + pod["initContainers"]:
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"], c["name"]
        assert "limits" in c["resources"]


def test_tenant_manifest_matches_what_the_platform_creates() -> None:
    s = parse_settings({**copy.deepcopy(stack_config("prod")), "tenants": {"team-a": {"serviceAccounts": ["app"]}}},
                       "prod")
    (tenant,) = s.configuration.tenants
    env = reconcile_environment(configuration_spec(configuration_args(s, "openbao-ca")))
    sa, agent, deploy = manifest()
    assert sa["metadata"] == {"name": tenant.service_accounts[0], "namespace": tenant.namespace}
    hcl = agent["data"]["agent.hcl"]
    assert f'role       = "{tenant.role_name}"' in hcl
    assert f'address = "{env["BAO_ADDR"]}"' in hcl
    secret_path = re.search(r'secret "([^"]+)"', hcl).group(1)
    assert any(secret_path.startswith(p.rstrip("*")) for p in tenant.read), (secret_path, tenant.read)
    assert deploy["spec"]["template"]["spec"]["serviceAccountName"] == tenant.service_accounts[0]
