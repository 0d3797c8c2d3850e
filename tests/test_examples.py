"""The example programs in examples/: each runs on its own, and everything it deploys is valid.

An example is what another team writes with the package: its own Pulumi project using only
some components. Each is run exactly as the engine would run it (under mocks, with its own
stack file), and every Kubernetes object it registers is validated against the Kubernetes
1.35 schema, like the main stacks (tests/schema).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.schema.kube_schema import validation_errors
from tests.support.program import ROOT, ProgramRun, run_program

EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/Pulumi.yaml"))


def _run(example: Path) -> ProgramRun:
    (stack_file,) = example.glob("Pulumi.*.yaml")
    return run_program(stack_file.name[len("Pulumi."):-len(".yaml")], {}, root=example)


def test_there_is_an_example() -> None:
    assert [p.name for p in EXAMPLES] == ["pki-cluster"]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_uses_only_the_package(example: Path) -> None:
    """It imports the components as another program would: never this repository's stack code."""
    source = (example / "__main__.py").read_text()
    assert "from openbao_platform import" in source
    assert "openbao_platform.settings" not in source and "openbao_platform.platform" not in source
    project = yaml.safe_load((example / "Pulumi.yaml").read_text())
    assert project["name"] != "openbao-platform" and project["runtime"]["name"] == "python"
    assert (example / "requirements.txt").read_text().strip().splitlines()[-1] == "../.."


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_objects_validate_against_the_kubernetes_schema(example: Path) -> None:
    objects = [r.plain_props for r in _run(example).kubernetes_objects()]
    assert len(objects) >= 10
    assert [e for obj in objects for e in validation_errors(obj)] == []


def test_pki_cluster_example_deploys_what_it_says() -> None:
    run = _run(ROOT / "examples" / "pki-cluster")
    kinds = sorted({r.plain_props["kind"] for r in run.kubernetes_objects()})
    assert kinds == ["ClusterRoleBinding", "ConfigMap", "Namespace", "NetworkPolicy", "PodDisruptionBudget",
                     "Role", "RoleBinding", "Secret", "Service", "ServiceAccount", "StatefulSet"]
    sts = run.object("StatefulSet", "vault")
    assert sts["metadata"]["namespace"] == "secrets" and sts["spec"]["serviceName"] == "vault-internal"
    assert {p["metadata"]["name"] for p in (r.plain_props for r in run.kubernetes_objects())
            if p["kind"] == "NetworkPolicy"} == {"vault-default-deny", "vault-server"}
    (csr,) = run.of_type("tls:index/certRequest:CertRequest")
    assert "vault-2.vault-internal.secrets.svc" in csr.plain_props["dnsNames"]
    assert run.by_name("cluster-statefulset").options["protect"] is True  # the components' secure default
