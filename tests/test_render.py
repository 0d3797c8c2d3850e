"""tools.render: the interface reviewers, the schema/checkov checks and the e2e suite rely on."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tools.render import REDACTED, render
from tests.support.program import ROOT


@pytest.fixture(scope="module")
def prod_render(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("render-prod")
    return out, render("prod", out)


def _secret_values(run: object) -> list[str]:
    """Every secret value the run produced (key PEM lines, unseal key, password)."""
    tls = run.object("Secret", "openbao-tls")["stringData"]  # type: ignore[attr-defined]
    key_body = tls["tls.key"].splitlines()[1]
    unseal = run.object("Secret", "openbao-unseal")["data"]["unseal-v1"]  # type: ignore[attr-defined]
    password = run.object("Secret", "openbao-init")["stringData"]["admin-password"]  # type: ignore[attr-defined]
    return [key_body, unseal, password]


def test_layout(prod_render: tuple[Path, object]) -> None:
    out, _ = prod_render
    files = sorted(p.name for p in (out / "manifests").iterdir())
    assert files and all(f.endswith(".yaml") for f in files)
    for f in (out / "manifests").iterdir():
        docs = list(yaml.safe_load_all(f.read_text()))
        assert len(docs) == 1 and docs[0]["apiVersion"] and docs[0]["kind"]
    kinds = {yaml.safe_load(f.read_text())["kind"] for f in (out / "manifests").iterdir()}
    assert {"StatefulSet", "ConfigMap", "Secret", "Service", "Role", "RoleBinding", "PodDisruptionBudget"} <= kinds
    for rel in ("config/server.json", "config/initialize.json", "config/start.sh", "tls/tls.crt", "tls/tls.key",
                "tls/ca.crt", "unseal/unseal-v1", "init/admin-password", "pods.json"):
        assert (out / "openbao" / rel).is_file(), rel
    assert ((out / "openbao" / "tls" / "tls.key").stat().st_mode & 0o777) == 0o600


def test_resources_json_is_what_the_engine_sees(prod_render: tuple[Path, object]) -> None:
    out, run = prod_render
    resources = json.loads((out / "resources.json").read_text())
    assert len(resources) == len(run.registrations)  # type: ignore[attr-defined]
    assert all(set(r) == {"type", "name", "urn", "options", "props"} for r in resources)
    assert all(r["urn"].startswith("urn:pulumi:prod::openbao-platform::") for r in resources)
    (sts,) = [r for r in resources if r["type"] == "kubernetes:apps/v1:StatefulSet"]
    assert sts["props"]["spec"]["updateStrategy"] == {"type": "OnDelete"}  # camelCase as registered
    assert isinstance(sts["props"]["spec"]["replicas"], int)


def test_secrets_redacted_by_default(prod_render: tuple[Path, object]) -> None:
    out, run = prod_render
    text = (out / "resources.json").read_text() + "".join(
        f.read_text() for f in (out / "manifests").iterdir())
    for value in _secret_values(run):
        assert value not in text
    unseal = yaml.safe_load(next((out / "manifests").glob("*secret-openbao-openbao-unseal.yaml")).read_text())
    assert base64.b64decode(unseal["data"]["unseal-v1"]).decode() == REDACTED


def test_openbao_dir_holds_usable_material(prod_render: tuple[Path, object]) -> None:
    out, run = prod_render
    assert len((out / "openbao" / "unseal" / "unseal-v1").read_bytes()) == 32
    server = json.loads((out / "openbao" / "config" / "server.json").read_text())
    assert server["seal"]["static"]["current_key"] == "file:///openbao/unseal/unseal-v1"
    pods = json.loads((out / "openbao" / "pods.json").read_text())
    assert [p["name"] for p in pods] == [f"openbao-{i}" for i in range(5)]
    assert pods[3]["env"]["BAO_RAFT_NODE_ID"] == "openbao-3"


def test_include_secrets_and_overrides(tmp_path: Path) -> None:
    run = render("dev", tmp_path, {"replicas": 5, "ingress.mode": "none"}, include_secrets=True)
    text = "".join(f.read_text() for f in (tmp_path / "manifests").iterdir())
    for value in _secret_values(run):
        assert value in text
    sts = yaml.safe_load(next((tmp_path / "manifests").glob("*statefulset*")).read_text())
    assert sts["spec"]["replicas"] == 5


def test_cli_reports_bad_config_and_unknown_stack(tmp_path: Path) -> None:
    bad = subprocess.run([sys.executable, "-m", "tools.render", "--stack", "dev", "--out", str(tmp_path),
                          "--set", "replicas=2"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "openbao-platform:replicas = 2" in bad.stderr
    assert not (tmp_path / "manifests").exists(), "nothing may be written for a bad config"
    missing = subprocess.run([sys.executable, "-m", "tools.render", "--stack", "nope", "--out", str(tmp_path)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "Pulumi.nope.yaml" in missing.stderr and "dev" in missing.stderr


def test_cli_renders_dev(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "tools.render", "--stack", "dev", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "rendered stack dev" in done.stdout
    assert (tmp_path / "openbao" / "config" / "server.json").is_file()


def test_manifest_names_are_stable_and_in_apply_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    render("prod", first)
    render("prod", second)
    names = sorted(p.name for p in (first / "manifests").iterdir())
    assert names == sorted(p.name for p in (second / "manifests").iterdir())
    kinds = [yaml.safe_load((first / "manifests" / n).read_text())["kind"] for n in names]
    assert kinds[0] == "Namespace" and kinds.index("Secret") < kinds.index("StatefulSet")
