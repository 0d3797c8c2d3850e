"""Backups to object storage (backup.remote) pass the pack: the prod stack with the rclone upload
container, its secretKeyRef env, the endpoint CA volume and the storage egress rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from tests.policy.policy_harness import PACK_DIR, PolicyAnalyzer
from tests.schema.rendering import RENDER_VARIANTS
from tests.support.render_cli import run_render


@pytest.fixture(scope="module")
def resources(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    stack, overrides = RENDER_VARIANTS["prod-s3"]
    out = run_render(stack, tmp_path_factory.mktemp("render-prod-s3"), overrides)
    return json.loads((Path(out) / "resources.json").read_text())


def _mandatory(analyzer: PolicyAnalyzer, resources: list[dict[str, Any]]) -> list[str]:
    analyzer.configure_from_file(PACK_DIR / "policy-config.prod.json")
    return [f"{d.policy} @ {d.urn.rsplit('::', 1)[-1]}: {d.message.splitlines()[-1]}"
            for d in analyzer.analyze_all(resources, "prod") if d.level == "mandatory"]


def _backup_policy(resources: list[dict[str, Any]]) -> dict[str, Any]:
    (policy,) = [r for r in resources if r["type"] == "kubernetes:networking.k8s.io/v1:NetworkPolicy"
                 and r["props"]["metadata"]["name"] == "openbao-backup"]
    return policy


def test_remote_backup_stack_has_no_mandatory_violations(analyzer: PolicyAnalyzer,
                                                         resources: list[dict[str, Any]]) -> None:
    assert {"cidr": "52.218.0.0/17"} in [p.get("ipBlock") for rule in _backup_policy(resources)["props"]["spec"]["egress"]
                                         for p in rule["to"]]
    assert _mandatory(analyzer, resources) == []


def test_the_pack_looks_at_the_upload_container(analyzer: PolicyAnalyzer, resources: list[dict[str, Any]]) -> None:
    """A clean result must not come from rules that skip the rclone container: break it twice."""
    broken = copy.deepcopy(resources)
    (job,) = [r for r in broken if r["type"] == "kubernetes:batch/v1:CronJob"
              and r["props"]["metadata"]["name"] == "openbao-backup"]
    (upload,) = job["props"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    assert upload["name"] == "upload"
    upload["env"].append({"name": "RCLONE_CONFIG_BACKUP_SECRET_ACCESS_KEY",
                          "valueFrom": {"secretKeyRef": {"name": "openbao-s3", "key": "secret-access-key"}}})
    upload["securityContext"]["privileged"] = True
    fired = {line.split(" @ ")[0] for line in _mandatory(analyzer, broken)}
    assert {"pod-secrets-as-files", "pod-security-restricted"} <= fired, fired
