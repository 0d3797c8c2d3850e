"""Run the offline render the way reviewers and CI do: ``python -m tools.render`` in a subprocess.

A subprocess keeps each render's Pulumi runtime state out of the test process and exercises
the command-line interface itself. Shared by the schema, policy and e2e suites.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Mapping, Optional

from tests.support.program import ROOT


class RenderError(RuntimeError):
    """The renderer exited non-zero; the message carries its output."""


def run_render(stack: str, out: Path, overrides: Optional[Mapping[str, Any]] = None, timeout: float = 600) -> Path:
    """Render ``stack`` into ``out`` (``overrides``: config path -> value, sent as JSON); returns ``out``."""
    cmd = [sys.executable, "-m", "tools.render", "--stack", stack, "--out", str(out)]
    for key, value in (overrides or {}).items():
        cmd += ["--set", f"{key}={json.dumps(value)}"]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RenderError(f"render failed ({' '.join(cmd[1:])}), exit {proc.returncode}:\n"
                          f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return Path(out)
