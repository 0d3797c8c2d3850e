"""UnsealKey: the static-seal key, generated once and kept as a Pulumi secret.

OpenBao's static seal reads a key of exactly 32 raw bytes from a file; a trailing newline
breaks it, so the Secret carries the bytes base64-encoded in ``data`` (Kubernetes decodes
them to the raw file). Each key version is its own RandomBytes resource, named by version,
so a rotation adds a new key and keeps the previous one until the settings drop it.
"""


from typing import Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from openbao_platform.lifecycle import stateful
from openbao_platform.settings import ArgsCheck, UnsealSettings
from openbao_platform.tokens import token, with_previous_token

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


class UnsealKeyArgs(TypedDict, total=False):
    """Inputs of UnsealKey."""

    secret_name: Required[str]
    """Name of the Opaque Secret the server pods mount read-only (one 32-byte item per key id)."""
    namespace: Required[str]
    """Namespace of the Secret."""
    key_version: int
    """Current static-seal key version; its key id is ``unseal-v<N>``. Default 1."""
    previous_key_version: int
    """The version being rotated away from, kept until the stored keys are re-wrapped; omit otherwise."""
    labels: dict[str, str]
    """Labels of the Secret."""
    protect: bool
    """Refuse replacement and deletion of the keys and the Secret (default true: they are irreplaceable)."""


def unseal_spec(args: UnsealKeyArgs) -> UnsealSettings:
    """The validated key versions (the stack config's ``unseal`` rules), or ArgsError."""
    with ArgsCheck("UnsealKey") as check:
        check.object_name("secret_name", args.get("secret_name"))
        check.object_name("namespace", args.get("namespace"), namespace=True)
        spec = check.section("unseal", {k: args.get(k) for k in ("key_version", "previous_key_version")})
    return spec


class UnsealKey(pulumi.ComponentResource):
    """Random unseal key(s) and the Secret the pods mount read-only."""

    secret_name: pulumi.Output[str]
    """Opaque Secret with one item per key id (``unseal-vN``), 32 raw bytes each."""
    key_id: pulumi.Output[str]
    """The current key id."""
    previous_key_id: pulumi.Output[Optional[str]]
    """The previous key id while a rotation is in progress."""

    def __init__(self, name: str, args: UnsealKeyArgs, opts: Optional[pulumi.ResourceOptions] = None) -> None:
        spec = unseal_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("UnsealKey"), name, None, with_previous_token(opts, "openbao:unseal:UnsealKey"))
        protect = args.get("protect", True)
        # Losing a key makes every snapshot and volume sealed with it unreadable: protected, and
        # dropping a retired version takes `pulumi state unprotect` (unseal rotation runbook).
        keys = {
            key_id(v): random.RandomBytes(f"{name}-v{v}", length=KEY_BYTES, opts=stateful(self, protect))
            for v in key_versions(spec)
        }
        data = pulumi.Output.secret(pulumi.Output.all(**{k: r.base64 for k, r in keys.items()}))
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": args["secret_name"], "namespace": args["namespace"], "labels": args.get("labels", {})},
            type="Opaque",
            data=data,
            immutable=False,
            opts=stateful(self, protect, retain=True),
        )
        self.secret_name = secret.metadata.name
        self.key_id = pulumi.Output.from_input(spec.key_id)
        self.previous_key_id = pulumi.Output.from_input(spec.previous_key_id)
        self.register_outputs({"secret_name": self.secret_name, "key_id": self.key_id,
                               "previous_key_id": self.previous_key_id})
