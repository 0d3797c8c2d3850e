"""The shell scripts the pods run, kept as real files so they can be read and linted.

They ship in ConfigMaps; nothing in them is secret. Each is POSIX sh (the image is
Alpine/busybox) and takes its paths from environment variables, so the e2e suite runs the
very same file against real OpenBao processes with paths remapped.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_DIR = Path(__file__).parent


@cache
def script(name: str) -> str:
    """The text of ``openbao_platform/scripts/<name>``."""
    return (_DIR / name).read_text()
