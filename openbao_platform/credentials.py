"""BootstrapCredentials: the break-glass admin password that self-initialisation reads.

Self-init creates the userpass admin with ``eval_source = "file"`` from this Secret, so the
password never appears in the server config, a ConfigMap or a log. The stack exports it only
as a secret output; rotating it is a normal ``bao write auth/userpass/users/<name>``.
"""


import re
from typing import Any, NamedTuple, Optional, Required, TypedDict

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from openbao_platform.settings import ArgsCheck
from openbao_platform.tokens import token, with_previous_token

#: Default item name inside the Secret; server_config names the same file (ADMIN_PASSWORD_FILE).
ADMIN_PASSWORD_ITEM = "admin-password"
#: Default password length: 32 letters and digits, about 190 bits.
PASSWORD_LENGTH = 32
#: Shortest password accepted: 16 letters and digits, about 95 bits.
MIN_PASSWORD_LENGTH = 16
#: A Secret's data key (Kubernetes validation: IsConfigMapKey).
_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


class BootstrapCredentialsArgs(TypedDict, total=False):
    """Inputs of BootstrapCredentials."""

    secret_name: Required[str]
    """Name of the Opaque Secret the server pods mount read-only at the self-init directory."""
    namespace: Required[str]
    """Namespace of the Secret."""
    password_item: str
    """Item (file name) in the Secret that holds the password. Default ``admin-password``."""
    password_length: int
    """Length of the random password, letters and digits only (at least 16). Default 32."""
    labels: dict[str, str]
    """Labels of the Secret."""


class CredentialsSpec(NamedTuple):
    """BootstrapCredentialsArgs, validated and with every default filled in."""

    password_item: str
    password_length: int


def _check_rest(r: Any) -> CredentialsSpec:
    """The Secret's item, the password length and the labels (``r`` reads the args, keys camelCased)."""
    r.unknown_keys("", ["secretName", "namespace", "passwordItem", "passwordLength", "labels"])
    item = r.get("passwordItem", str, ADMIN_PASSWORD_ITEM, "use a file name such as admin-password")
    if len(item) > 253 or not _SECRET_KEY.match(item):
        r.fail("passwordItem", item, "is not a valid Secret key (letters, digits, '-', '_' and '.')",
               f"use a file name such as {ADMIN_PASSWORD_ITEM}")
    length = r.get("passwordLength", int, PASSWORD_LENGTH, f"use a whole number, e.g. {PASSWORD_LENGTH}")
    if length < MIN_PASSWORD_LENGTH:
        r.fail("passwordLength", length, f"is shorter than {MIN_PASSWORD_LENGTH}; a break-glass password must "
               "withstand offline guessing", f"use at least {MIN_PASSWORD_LENGTH}, e.g. {PASSWORD_LENGTH}")
    labels = r.raw.get("labels", {})
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        r.fail("labels", labels, "must be a mapping of strings to strings", 'use e.g. {"team": "security"}')
    return CredentialsSpec(password_item=item, password_length=length)


def credentials_spec(args: BootstrapCredentialsArgs) -> CredentialsSpec:
    """The validated args with their defaults, or ArgsError (nothing registered)."""
    with ArgsCheck("BootstrapCredentials") as check:
        check.object_name("secret_name", args.get("secret_name"))
        check.object_name("namespace", args.get("namespace"), namespace=True)
        spec = check.section("", dict(args), parse=_check_rest)
    return spec


class BootstrapCredentials(pulumi.ComponentResource):
    """A random admin password and the Secret self-init reads it from."""

    secret_name: pulumi.Output[str]
    """Secret mounted read-only into the server pods at the init directory."""
    admin_password: pulumi.Output[str]
    """The break-glass password (secret output)."""

    def __init__(self, name: str, args: BootstrapCredentialsArgs,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        spec = credentials_spec(args)  # before anything registers: bad args create nothing
        super().__init__(token("BootstrapCredentials"), name, None, with_previous_token(opts, "openbao:credentials:BootstrapCredentials"))
        child = pulumi.ResourceOptions(parent=self)
        item = spec.password_item
        # Letters and digits only: the value is read from a file verbatim, so no quoting traps.
        password = random.RandomPassword(f"{name}-admin-password", length=spec.password_length, special=False,
                                         min_lower=4, min_upper=4, min_numeric=4, opts=child)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": args["secret_name"], "namespace": args["namespace"],
                      "labels": dict(args.get("labels", {}))},
            type="Opaque",
            string_data=pulumi.Output.secret(password.result.apply(lambda p: {item: p})),
            opts=child,
        )
        self.secret_name = secret.metadata.name
        self.admin_password = pulumi.Output.secret(password.result)
        self.register_outputs({"secret_name": self.secret_name, "admin_password": self.admin_password})
