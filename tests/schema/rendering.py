"""Render the real stacks through the lead's renderer, and read what it wrote.

Interface relied on: ``python -m tools.render --stack dev|prod --out DIR
[--set key=JSON ...]`` writes ``DIR/manifests/*.yaml`` (one object per file).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.render_cli import run_render

ROOT = Path(__file__).resolve().parents[2]

#: variant -> (stack, overrides). The prod stack is rendered in both edge modes.
RENDER_VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "dev": ("dev", {}),
    "prod-nginx": ("prod", {"ingress.mode": "nginx"}),
    "prod-gateway": ("prod", {"ingress.mode": "gateway"}),
    # backups to object storage (issue 12): the rclone upload container, its env, Secret refs, CA volume
    "prod-s3": ("prod", {"backup.local": False, "backup.remote": {
        "enabled": True, "endpoint": "https://s3.eu-west-1.amazonaws.com", "bucket": "acme-openbao-backups",
        "region": "eu-west-1", "endpointCidrs": ["52.218.0.0/17"], "credentialsSecretName": "openbao-s3",
        "caSecretName": "openbao-s3-ca"},
        # and the restore drill (issue 12, point 2): its CronJob, ServiceAccount and NetworkPolicy
        "backup.drill": {"enabled": True, "credentialsSecretName": "openbao-backup-drill"}}),
}


def render(variant: str, out: Path) -> Path:
    """Render one variant into ``out``; fail the test loudly if the renderer fails."""
    stack, overrides = RENDER_VARIANTS[variant]
    manifests = run_render(stack, out, overrides) / "manifests"
    if not sorted(manifests.glob("*.yaml")):
        pytest.fail(f"render wrote no manifests under {manifests}")
    return manifests


def load_manifests(directory: Path) -> list[dict[str, Any]]:
    """Every object in DIR/*.yaml (one per file, as the renderer writes them)."""
    return [doc for path in sorted(directory.glob("*.yaml")) for doc in yaml.safe_load_all(path.read_text()) if doc]


def write_manifests(objects: list[dict[str, Any]], directory: Path) -> Path:
    """Write objects one per file, like the renderer, for tools that read a directory."""
    directory.mkdir(parents=True, exist_ok=True)
    for i, obj in enumerate(objects):
        name = f"{i:03d}-{obj['kind'].lower()}-{obj['metadata']['name']}.yaml"
        (directory / name).write_text(yaml.safe_dump(obj, sort_keys=False))
    return directory
