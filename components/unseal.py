"""UnsealKey: the static-seal key, generated once and kept as a Pulumi secret.

OpenBao's static seal reads a key of exactly 32 raw bytes from a file; a trailing newline
breaks it, so the Secret carries the bytes base64-encoded in ``data`` (Kubernetes decodes
them to the raw file). Each key version is its own RandomBytes resource, named by version,
so a rotation adds a new key and keeps the previous one until the settings drop it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.settings import Settings, UnsealSettings

#: The static seal wants exactly this many raw bytes.
KEY_BYTES = 32


def key_versions(unseal: UnsealSettings) -> list[int]:
    """Versions whose key material must exist: the current one and, while rotating, the previous."""
    versions = [unseal.key_version]
    if unseal.previous_key_version is not None:
        versions.append(unseal.previous_key_version)
    return versions


def key_id(version: int) -> str:
    """Key id as the seal stanza and the Secret's item name carry it."""
    return f"unseal-v{version}"


@dataclass(frozen=True)
class UnsealKeyArgs:
    """Inputs of UnsealKey."""

    settings: Settings


class UnsealKey(pulumi.ComponentResource):
    """Random unseal key(s) and the Secret the pods mount read-only."""

    secret_name: pulumi.Output[str]
    """Opaque Secret with one item per key id (``unseal-vN``), 32 raw bytes each."""
    key_id: str
    """The current key id."""
    previous_key_id: Optional[str]
    """The previous key id while a rotation is in progress."""

    def __init__(self, name: str, args: UnsealKeyArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("openbao:unseal:UnsealKey", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        keys = {
            key_id(v): random.RandomBytes(f"{name}-v{v}", length=KEY_BYTES, opts=child)
            for v in key_versions(s.unseal)
        }
        data = pulumi.Output.secret(pulumi.Output.all(**{k: r.base64 for k, r in keys.items()}))
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": f"{s.name}-unseal", "namespace": s.namespace, "labels": s.common_labels},
            type="Opaque",
            data=data,
            immutable=False,
            opts=child,
        )
        self.secret_name = secret.metadata.name
        self.key_id = s.unseal.key_id
        self.previous_key_id = s.unseal.previous_key_id
        self.register_outputs({"secret_name": self.secret_name, "key_id": self.key_id,
                               "previous_key_id": self.previous_key_id})
