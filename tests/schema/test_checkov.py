"""checkov (own venv, via tools/ci/checkov.sh) finds no failed check in what we deploy.

Waivers are ``checkov.io/skip<N>: CKV_K8S_<id>=<reason>`` annotations on the object that
needs them; every one must carry a reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Callable, NamedTuple

import pytest

from tests.schema.rendering import RENDER_VARIANTS, ROOT, load_manifests, write_manifests
from tests.schema.samples import SAMPLE_STACKS, builder_objects, sample_settings

CHECKOV_SH = ROOT / "tools" / "ci" / "checkov.sh"
CHECKOV_BIN = ROOT / ".venv-checkov" / "bin" / "checkov"
_SUMMARY = re.compile(r"Passed checks: (\d+), Failed checks: (\d+), Skipped checks: (\d+)")
_WAIVER_KEY = re.compile(r"^checkov\.io/skip\d+$")
_WAIVER_VALUE = re.compile(r"^CKV2?_K8S_\d+=(?P<reason>.+)$")


class ScanResult(NamedTuple):
    returncode: int
    passed: int
    failed: int
    skipped: int
    output: str


def run_checkov(directory: Path) -> ScanResult:
    """Run the CI script over a directory and parse checkov's summary line."""
    if not CHECKOV_BIN.exists():
        pytest.fail(f"checkov's venv is missing ({CHECKOV_BIN}). Install it with:\n"
                    f"    bash tools/ci/checkov.sh --install\n(its own venv: never pip install checkov into .venv)")
    proc = subprocess.run(["bash", str(CHECKOV_SH), str(directory)], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    output = proc.stdout + proc.stderr
    match = _SUMMARY.search(output)
    if match is None:
        pytest.fail(f"no checkov summary in the output (exit {proc.returncode}):\n{output}")
    passed, failed, skipped = map(int, match.groups())
    return ScanResult(proc.returncode, passed, failed, skipped, output)


def waiver_problems(obj: dict[str, Any]) -> list[str]:
    """Waiver annotations on an object that do not name a check and give a reason."""
    who = f"{obj.get('kind')}/{(obj.get('metadata') or {}).get('name')}"
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    problems = []
    for key, value in annotations.items():
        if not key.startswith("checkov.io/"):
            continue
        match = _WAIVER_VALUE.match(str(value))
        if not _WAIVER_KEY.match(key) or match is None or len(match["reason"].strip()) < 10:
            problems.append(f"{who}: {key}={value!r} (want checkov.io/skipN: CKV_K8S_<id>=<a real reason>)")
    return problems


def _assert_clean(result: ScanResult) -> None:
    assert result.failed == 0 and result.returncode == 0, result.output
    assert result.passed > 0, f"checkov ran no check at all:\n{result.output}"


def test_builder_objects_pass_checkov(tmp_path: Path) -> None:
    for stack in SAMPLE_STACKS:
        write_manifests(builder_objects(sample_settings(stack)), tmp_path / stack)
    _assert_clean(run_checkov(tmp_path))


def test_rendered_stacks_pass_checkov(tmp_path: Path, rendered_manifests: Callable[[str], Path]) -> None:
    for variant in RENDER_VARIANTS:
        shutil.copytree(rendered_manifests(variant), tmp_path / variant)
    _assert_clean(run_checkov(tmp_path))


def test_every_rendered_waiver_has_a_reason(rendered_manifests: Callable[[str], Path]) -> None:
    objects = [obj for variant in RENDER_VARIANTS for obj in load_manifests(rendered_manifests(variant))]
    assert [p for obj in objects for p in waiver_problems(obj)] == []


def test_waiver_check_rejects_a_waiver_without_reason() -> None:
    bad = {"kind": "Pod", "metadata": {"name": "p", "annotations": {"checkov.io/skip1": "CKV_K8S_43="}}}
    good = {"kind": "Pod", "metadata": {"name": "p", "annotations": {"checkov.io/skip1": "CKV_K8S_43=image is pinned by digest elsewhere"}}}
    assert waiver_problems(bad) and not waiver_problems(good)


def test_checkov_fails_a_privileged_pod(tmp_path: Path) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad", "namespace": "x"},
           "spec": {"containers": [{"name": "c", "image": "busybox:1.37", "securityContext": {"privileged": True}}]}}
    result = run_checkov(write_manifests([pod], tmp_path))
    assert result.failed > 0 and result.returncode != 0, result.output
    assert "CKV_K8S_16" in result.output  # "Container should not be privileged"
