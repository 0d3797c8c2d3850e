"""The rendered stacks are exactly the committed golden render, key material aside.

A refactor (e.g. narrowing component args) must not change what a stack deploys: every
Kubernetes object (manifests/) and every file the pods read (openbao/config, pods.json) of
prod, dev and prod in gateway mode is compared with tests/golden/<variant>.json. Only
freshly generated crypto is normalised: PEM blocks and the renewal alert's timestamp (it
is derived from the certificate's notAfter). A deliberate change regenerates the files:

    .venv/bin/python -m tests.test_render_golden --update
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

GOLDEN = Path(__file__).with_name("golden")
VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "prod": ("prod", {}),
    "dev": ("dev", {}),
    "prod-gateway": ("prod", {"ingress.mode": "gateway", "ingress.host": "bao.example.com"}),
}
_PEM = re.compile(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----\n?", re.S)
_RENEW_AT = re.compile(r"time\(\)(\)?) > [0-9]+")  # the renewal alert: vector(time()) > <epoch>


def _normalise(text: str) -> str:
    return _RENEW_AT.sub(r"time()\1 > <renew-at>", _PEM.sub(lambda m: f"<{m.group(1)}>", text))


def snapshot(variant: str) -> dict[str, str]:
    """What the variant deploys, as ``{relative path: normalised text}``."""
    from tools.render import render

    stack, overrides = VARIANTS[variant]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        render(stack, out, overrides)
        files = sorted((out / "manifests").glob("*.yaml")) + sorted((out / "openbao" / "config").iterdir())
        files.append(out / "openbao" / "pods.json")
        return {str(f.relative_to(out)): _normalise(f.read_text()) for f in files}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_render_is_the_golden_render(variant: str) -> None:
    golden = json.loads((GOLDEN / f"{variant}.json").read_text())
    current = snapshot(variant)
    assert sorted(current) == sorted(golden), "objects were added or removed"
    for path, text in golden.items():
        assert current[path] == text, f"{variant}: {path} changed"


def test_normalising_keeps_everything_but_key_material() -> None:
    text = "a\n-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\nexpr: vector(time()) > 1790000000 b"
    assert _normalise(text) == "a\n<CERTIFICATE>expr: vector(time()) > <renew-at> b"


if __name__ == "__main__" and "--update" in sys.argv:
    GOLDEN.mkdir(exist_ok=True)
    for name in VARIANTS:
        (GOLDEN / f"{name}.json").write_text(json.dumps(snapshot(name), indent=1, sort_keys=True) + "\n")
        print(f"wrote {GOLDEN / name}.json")
