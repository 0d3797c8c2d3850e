"""The openbao-platform component provider: the components, for programs in any Pulumi language.

The Python language host runs this file as ``python <this directory> <engine address>``
(pulumi/pulumi sdk/python/cmd/pulumi-language-python/main.go ``RunPlugin``, at 1b59498). The
SDK's component provider (``pulumi.provider.experimental``) infers the package schema from each
component's annotations -- its ``args`` TypedDict for the inputs, its ``pulumi.Output[...]``
attributes for the outputs, docstrings for descriptions (pulumi/provider/experimental/
analyzer.py) -- serves ``GetSchema`` and ``Construct`` over the ResourceProvider gRPC protocol,
and prints its port on stdout for the engine.

The components are imported from the installed package (requirements.txt installs the parent
project into the plugin's virtualenv); this directory holds no component code.
"""

import importlib.metadata
import sys
import tomllib
from pathlib import Path
from typing import Any

from pulumi import Output
from pulumi.provider import main
from pulumi.provider.experimental.analyzer import PropertyDefinition, PropertyType
from pulumi.provider.experimental.component import ComponentProvider

import openbao_platform.tokens as tokens
from openbao_platform.backup import OpenBaoBackup
from openbao_platform.cluster import OpenBaoCluster
from openbao_platform.configuration import OpenBaoConfiguration
from openbao_platform.credentials import BootstrapCredentials
from openbao_platform.edge import OpenBaoEdge
from openbao_platform.monitoring import OpenBaoMonitoring
from openbao_platform.network import OpenBaoNetworkPolicies
from openbao_platform.pki import ClusterPki
from openbao_platform.unseal import UnsealKey

#: Every component the package serves, as ``openbao-platform:index:<Class>``. Not
#: OpenBaoPlatform: it is this repository's stack composition and takes the stack Settings.
COMPONENTS = [
    ClusterPki,
    UnsealKey,
    BootstrapCredentials,
    OpenBaoCluster,
    OpenBaoNetworkPolicies,
    OpenBaoEdge,
    OpenBaoBackup,
    OpenBaoMonitoring,
    OpenBaoConfiguration,
]

#: The distribution pyproject.toml builds (``[project] name``).
DISTRIBUTION = "openbao-platform"


def package_version() -> str:
    """The version of the component package this provider imported.

    From a source tree (a checkout, or the test suite with the repository on ``sys.path``) it is
    the tree's ``pyproject.toml``; from an installed package, the distribution's metadata.
    """
    source = Path(tokens.__file__).resolve().parents[1] / "pyproject.toml"
    if source.is_file():
        with source.open("rb") as f:
            return tomllib.load(f)["project"]["version"]
    return importlib.metadata.version(DISTRIBUTION)


def _whole(value: Any, prop: PropertyDefinition) -> Any:
    """An integer property's value as ``int`` when it is a whole number (also in arrays and
    maps of integers, and inside Outputs); anything else unchanged, for the component's own
    validation to reject with its key, value and fix."""
    if isinstance(value, Output):
        return value.apply(lambda v: _whole(v, prop))
    if prop.type == PropertyType.INTEGER:
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if prop.type == PropertyType.ARRAY and prop.items and isinstance(value, list):
        return [_whole(v, prop.items) for v in value]
    if prop.type == PropertyType.OBJECT and prop.additional_properties and isinstance(value, dict):
        return {k: _whole(v, prop.additional_properties) for k, v in value.items()}
    return value


class OpenBaoComponentProvider(ComponentProvider):
    """The SDK's ComponentProvider, with integer inputs delivered to the components as ``int``.

    Every number reaches a provider as a double (a ``google.protobuf.Struct`` has no integers).
    ``ComponentProvider.map_input_properties`` means to convert integer properties but keeps
    the raw float: its integer branch assigns ``int(input_val)`` and then falls through to
    ``mapped_value[py_name] = input_val`` (pulumi/pulumi
    sdk/python/lib/pulumi/provider/experimental/component.py at 1b59498, identical in the
    pinned SDK 3.272), and it never looks into arrays or maps of integers. A component would
    get ``2.0`` for ``key_version: 2`` (``unseal-v2.0``) and its validation rejects that as not
    a whole number, so no integer input would work from any other language.
    tests/test_provider.py constructs a component with integer inputs over gRPC.
    """

    def map_input_properties(self, inputs: Any, properties: dict[str, PropertyDefinition],
                             mapping: dict[str, str], component_name: str, property_path: str) -> Any:
        # Nested object types recurse through this method too, so they are converted as well.
        mapped = super().map_input_properties(inputs, properties, mapping, component_name, property_path)
        for schema_name, prop in properties.items():
            py_name = mapping[schema_name]
            if py_name in mapped and not prop.ref:
                mapped[py_name] = _whole(mapped[py_name], prop)
        return mapped


def serve() -> None:
    """What ``pulumi.provider.experimental.component_provider_host`` does, with the provider above:
    analyse the components (an error names the component and stops the plugin), then serve."""
    provider = OpenBaoComponentProvider(COMPONENTS, tokens.PACKAGE, None, package_version())
    main(provider, sys.argv[1:])


if __name__ == "__main__":
    serve()
