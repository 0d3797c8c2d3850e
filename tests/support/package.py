"""The installable package and its provider, as the tests see them: names, fresh venvs, pip.

Nothing here hard-codes the import name of the component package: ``IMPORT_NAME`` is whatever
the import below resolves to, so renaming the package (a mechanical rewrite of its imports)
carries the tests with it.
"""

from __future__ import annotations

import os
import runpy
import shutil
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path
from typing import Any

#: What a reader runs when an install the tests need fails.
INSTALL_HINT = ".venv/bin/python -m pip install -r requirements-dev.txt   (or: bash tools/test.sh)"

try:
    import openbao_platform.tokens as _tokens
except ImportError as e:  # pragma: no cover - the message is for a broken environment
    raise ImportError(f"{e}: the package tests need the program's dependencies; run {INSTALL_HINT}") from e

ROOT = Path(__file__).resolve().parents[2]
PROVIDER_DIR = ROOT / "provider"

#: The importable package (the top-level name of ``openbao_platform.tokens``).
IMPORT_NAME = _tokens.__name__.partition(".")[0]
#: The Pulumi package name: every component is ``<PACKAGE>:index:<Class>``.
PACKAGE = _tokens.PACKAGE
token = _tokens.token


def pyproject() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        return tomllib.load(f)


def provider_main() -> dict[str, Any]:
    """The namespace of ``provider/__main__.py`` (``COMPONENTS``, ``package_version``), loaded
    without starting the provider (it only serves under ``__name__ == "__main__"``)."""
    return runpy.run_path(str(PROVIDER_DIR / "__main__.py"), run_name="openbao_provider_main")


def hosted_components() -> list[type]:
    """The component classes the provider serves, from ``provider/__main__.py`` itself."""
    return list(provider_main()["COMPONENTS"])


def source_tree(dest: Path) -> Path:
    """A copy of the repository as a clone of it would hold it, plus uncommitted work.

    The files git would check out or commit (``git ls-files --cached --others
    --exclude-standard``), so ignored build output and venvs stay out, exactly as from a git
    URL. A copy, not the working tree itself: setuptools builds in-tree (``build/``,
    ``*.egg-info``) and parallel tests must not race on, or litter, the repository.
    """
    if shutil.which("git") is None:
        raise AssertionError("git is needed to copy the source tree the way a clone has it; install git")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for rel in filter(None, (p.decode() for p in listed)):
        src = ROOT / rel
        if src.is_file():  # a file deleted in the working tree is still in the index
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def fresh_venv(path: Path) -> Path:
    """A new virtual environment with pip and nothing else; returns its python."""
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(path)
    except (subprocess.CalledProcessError, OSError) as e:
        raise AssertionError(f"`{sys.executable} -m venv {path}` failed ({e}); the tests need a Python with "
                             "venv and ensurepip (Debian/Ubuntu: apt-get install python3-venv)") from e
    return path / "bin" / "python"


def pip_install(python: Path, *args: str, cwd: Path) -> float:
    """``python -m pip install <args>`` in ``cwd``; the seconds it took. Fails with pip's output.

    ``--no-compile`` only skips writing .pyc files (half the time: pulumi-kubernetes has
    thousands of modules); what gets installed is the same.
    """
    cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q", "--no-compile", *args]
    start = time.monotonic()
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=900,
                          env={**os.environ, "PIP_NO_INPUT": "1"})
    took = time.monotonic() - start
    if done.returncode != 0:
        raise AssertionError(f"`{' '.join(cmd)}` (in {cwd}) failed with {done.returncode}:\n"
                             f"{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    return took


def site_packages(python: Path) -> Path:
    out = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                         capture_output=True, text=True, check=True)
    return Path(out.stdout.strip())


def report(line: str) -> None:
    """A figure the note quotes (shown by ``pytest -s``, and in the captured output on failure)."""
    print(line, file=sys.stderr)
