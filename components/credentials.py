"""BootstrapCredentials: the break-glass admin password that self-initialisation reads.

Self-init creates the userpass admin with ``eval_source = "file"`` from this Secret, so the
password never appears in the server config, a ConfigMap or a log. The stack exports it only
as a secret output; rotating it is a normal ``bao write auth/userpass/users/<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.settings import Settings

#: Item name inside the Secret; server_config names the same file.
ADMIN_PASSWORD_ITEM = "admin-password"
PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class BootstrapCredentialsArgs:
    """Inputs of BootstrapCredentials."""

    settings: Settings


class BootstrapCredentials(pulumi.ComponentResource):
    """A random admin password and the Secret self-init reads it from."""

    secret_name: pulumi.Output[str]
    """Secret mounted read-only into the server pods at the init directory."""
    admin_password: pulumi.Output[str]
    """The break-glass password (secret output)."""

    def __init__(self, name: str, args: BootstrapCredentialsArgs,
                 opts: Optional[pulumi.ResourceOptions] = None) -> None:
        super().__init__("openbao:credentials:BootstrapCredentials", name, None, opts)
        s = args.settings
        child = pulumi.ResourceOptions(parent=self)
        # Letters and digits only: the value is read from a file verbatim, so no quoting traps.
        password = random.RandomPassword(f"{name}-admin-password", length=PASSWORD_LENGTH, special=False,
                                         min_lower=4, min_upper=4, min_numeric=4, opts=child)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={"name": f"{s.name}-init", "namespace": s.namespace, "labels": s.common_labels},
            type="Opaque",
            string_data=pulumi.Output.secret(password.result.apply(lambda p: {ADMIN_PASSWORD_ITEM: p})),
            opts=child,
        )
        self.secret_name = secret.metadata.name
        self.admin_password = pulumi.Output.secret(password.result)
        self.register_outputs({"secret_name": self.secret_name, "admin_password": self.admin_password})
