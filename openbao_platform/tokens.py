"""Type tokens of the components, and the aliases that keep existing stacks' state.

The components are a Pulumi package (PulumiPlugin.yaml): a program in any language creates
them by the token ``openbao-platform:index:<Class>``, which is the token the Python class
must register with (the component provider host serves every component under the package's
``index`` module: pulumi/provider/experimental/analyzer.py). Stacks deployed before the
package existed hold the old ``openbao:<module>:<Class>`` tokens: each component aliases its
old token, and the engine carries a parent's alias to its children
(pulumi/pulumi pkg/resource/deploy/step_generator.go ``generateAliases``, 1b59498), so no
resource is re-created.
"""

from __future__ import annotations

from typing import Optional

import pulumi

#: The Pulumi package name (PulumiPlugin.yaml, `pulumi package add`).
PACKAGE = "openbao-platform"


def token(cls: str) -> str:
    """The type token a component registers with."""
    return f"{PACKAGE}:index:{cls}"


def with_previous_token(opts: Optional[pulumi.ResourceOptions], previous: str) -> pulumi.ResourceOptions:
    """``opts`` plus an alias to the token this component had before it was packaged."""
    alias = pulumi.ResourceOptions(aliases=[pulumi.Alias(type_=previous)])
    return pulumi.ResourceOptions.merge(opts, alias) if opts else alias
