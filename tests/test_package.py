"""The installable package: `pip install <repo>` into a fresh venv, and the plugin install.

Both installs go into brand-new virtual environments from a copy of the source tree as a
clone holds it (tests/support/package.py ``source_tree``), and everything is imported from
outside the repository, so nothing can come from the working tree by accident:

* ``pip install <source>``: what a Python program's ``pip install git+https://...`` does;
* ``pip install -r requirements.txt`` in ``provider/``: what the Python language host does
  when ``pulumi package add`` installs the plugin (the language host runs pip with the
  plugin directory as working directory: pulumi/pulumi sdk/python/toolchain/pip.go
  ``InstallDependencies``, at 1b59498), then the plugin is run from that venv and serves the
  same schema as the source tree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
from google.protobuf import empty_pb2
from pulumi.runtime.proto import engine_pb2_grpc, provider_pb2

from tests.support.package import (IMPORT_NAME, PACKAGE, ROOT, fresh_venv, hosted_components, pip_install,
                                   provider_main, pyproject, report, site_packages, source_tree)
from tests.support.provider_host import RecordingEngine, serve, start_provider


def _requirement_lines(path: Path) -> list[str]:
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("-")]


def _normalise(requirement: str) -> str:
    name, spec = re.match(r"([A-Za-z0-9._-]+)\s*(.*)", requirement).groups()  # type: ignore[union-attr]
    return f"{re.sub(r'[-_.]+', '-', name).lower()}{spec.replace(' ', '')}"


def test_pyproject_dependencies_are_the_runtime_requirements() -> None:
    """`pip install <repo>` and `pip install -r requirements.txt` (what `pulumi up` uses) must
    install the same ranges."""
    project = pyproject()["project"]
    assert project["name"] == "openbao-platform"
    assert project["requires-python"] == ">=3.11"
    assert sorted(map(_normalise, project["dependencies"])) == sorted(
        map(_normalise, _requirement_lines(ROOT / "requirements.txt")))


def test_plugin_requirements_install_the_parent_project() -> None:
    assert _requirement_lines(ROOT / "provider" / "requirements.txt") == [".."]


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return source_tree(tmp_path_factory.mktemp("checkout"))


@pytest.fixture(scope="module")
def installed(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with `pip install <source>` (not editable); its python."""
    python = fresh_venv(tmp_path_factory.mktemp("venv-pip"))
    took = pip_install(python, str(source), cwd=tmp_path_factory.mktemp("elsewhere"))
    report(f"fresh venv: pip install <repo> took {took:.1f} s")
    return python


PROBE = r"""
import importlib, importlib.metadata, json, sys
from pathlib import Path
import_name, served = sys.argv[1], json.loads(sys.argv[2])
package = importlib.import_module(import_name)
scripts = importlib.import_module(import_name + ".scripts")
found = {}
for module, cls in served:
    found[cls] = getattr(importlib.import_module(module), cls).__module__
dist = importlib.metadata.distribution("openbao-platform")
print(json.dumps({
    "package_file": package.__file__,
    "sys_path": sys.path,
    "components": found,
    "scripts_dir": str(Path(scripts.__file__).parent),
    "start_sh": scripts.script("start.sh"),
    "backup_sh": scripts.script("backup.sh"),
    "top_level": sorted({str(f).split("/")[0] for f in dist.files}),
    "version": dist.version,
}))
"""


def test_fresh_venv_imports_the_package_and_every_component(installed: Path, tmp_path: Path) -> None:
    served = [(c.__module__, c.__name__) for c in hosted_components()]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    # -I: isolated, so neither the working directory nor PYTHONPATH can put the repo on sys.path.
    done = subprocess.run([str(installed), "-I", "-c", PROBE, IMPORT_NAME, json.dumps(served)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"importing the installed package failed:\n{done.stderr[-6000:]}"
    probe = json.loads(done.stdout)
    site = site_packages(installed)

    assert Path(probe["package_file"]).is_relative_to(site), probe["package_file"]
    assert not any(p and Path(p).resolve().is_relative_to(ROOT) for p in probe["sys_path"]), probe["sys_path"]
    assert sorted(probe["components"]) == sorted(name for _, name in served)
    assert len(served) == 9
    # The pod scripts ship inside the package and are read from there at run time.
    scripts_dir = Path(probe["scripts_dir"])
    assert scripts_dir.is_relative_to(site) and scripts_dir == site / IMPORT_NAME / "scripts"
    assert sorted(p.name for p in scripts_dir.glob("*.sh")) == sorted(
        p.name for p in (ROOT / IMPORT_NAME / "scripts").glob("*.sh"))
    assert probe["start_sh"] == (ROOT / IMPORT_NAME / "scripts" / "start.sh").read_text()
    assert probe["backup_sh"] == (ROOT / IMPORT_NAME / "scripts" / "backup.sh").read_text()
    # Only the component package: not the stack program, tests, tools or policies.
    assert probe["top_level"] == sorted([IMPORT_NAME, f"openbao_platform-{probe['version']}.dist-info"])
    assert probe["version"] == pyproject()["project"]["version"]


@pytest.fixture(scope="module")
def plugin_venv(source: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plugin's venv as the language host makes it: `pip install -r requirements.txt` run
    in the plugin directory of the checkout."""
    python = fresh_venv(tmp_path_factory.mktemp("venv-plugin"))
    took = pip_install(python, "-r", "requirements.txt", cwd=source / "provider")
    report(f"fresh venv: pip install -r provider/requirements.txt took {took:.1f} s")
    return python


@pytest.fixture(scope="module")
def engine() -> Iterator[str]:
    server, address = serve(engine_pb2_grpc.add_EngineServicer_to_server, RecordingEngine())
    yield address
    server.stop(grace=None)


def test_installed_plugin_serves_the_schema(plugin_venv: Path, source: Path, engine: str, tmp_path: Path) -> None:
    """The plugin run from its own venv (the package installed there, not on PYTHONPATH) serves
    exactly the schema the source tree's components give."""
    provider = start_provider(plugin_venv, source / "provider", engine, cwd=tmp_path, env={"PYTHONPATH": None})
    try:
        schema = json.loads(provider.stub.GetSchema(provider_pb2.GetSchemaRequest(), timeout=60).schema)
        version = provider.stub.GetPluginInfo(empty_pb2.Empty(), timeout=30).version
    finally:
        provider.stop()
    main = provider_main()
    expected = json.loads(main["OpenBaoComponentProvider"](main["COMPONENTS"], PACKAGE, None,
                                                          main["package_version"]()).schema)
    assert version == pyproject()["project"]["version"]
    assert schema == expected
