"""Turn a plain Kubernetes object dict into keyword arguments for a typed pulumi-kubernetes class.

The builders produce objects exactly as YAML would hold them (camelCase). The typed classes
set apiVersion/kind themselves and take the top-level fields as snake_case keywords; nested
dicts pass through unchanged (camelCase is what the provider expects inside them).
"""

from __future__ import annotations

import re
from typing import Any

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def typed_kwargs(obj: dict[str, Any]) -> dict[str, Any]:
    """``{"apiVersion", "kind", "automountServiceAccountToken": x}`` -> ``{"automount_service_account_token": x}``."""
    return {_CAMEL.sub("_", k).lower(): v for k, v in obj.items() if k not in ("apiVersion", "kind")}
