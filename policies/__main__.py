"""Entry point of the policy pack: the Pulumi engine runs this file, nothing imports it.

``pulumi preview --policy-pack policies`` runs it with ``runpy`` (``pulumi.policy``); the
tests run ``python policies/__main__.py``. Either way this directory comes first on
``sys.path``, where ``secrets.py`` would shadow the standard library's ``secrets``. So the
directory is taken off ``sys.path`` and loaded as the package ``openbao_policies`` under a
fixed name, whatever the directory is called. ``PolicyPack`` then serves forever, printing
its port on stdout.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from types import ModuleType

from pulumi_policy import EnforcementLevel, PolicyPack

PACKAGE = "openbao_policies"
_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_package() -> ModuleType:
    """Import the rule modules as a package, without this directory on sys.path."""
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(_HERE, "__init__.py"), submodule_search_locations=[_HERE])
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load the policy pack from {_HERE}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)
    return module


_pack = _load_package()

# The description lives in PulumiPolicy.yaml: PolicyPack only takes one from pulumi-policy 1.18.
PolicyPack(
    name=_pack.PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=_pack.POLICIES,
)
