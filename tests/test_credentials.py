"""BootstrapCredentials: the break-glass admin password, as the stack uses it and on its own."""

from __future__ import annotations

import string

import pytest
from pulumi.runtime import rpc

from openbao_platform.credentials import BootstrapCredentials
from openbao_platform.settings import parse_settings
from tests.support.component import rejected_args, run_components
from tests.support.program import ProgramRun, resolve, stack_config


def test_platform_maps_the_stack_to_the_credentials_args() -> None:
    from openbao_platform.platform import credentials_args
    from openbao_platform.server_config import ADMIN_PASSWORD_FILE

    s = parse_settings({"namespace": "vault", "name": "bao"}, "qa")
    assert credentials_args(s) == {"secret_name": "bao-init", "namespace": "vault",
                                   "password_item": ADMIN_PASSWORD_FILE, "labels": s.common_labels}


def test_stack_secret_is_the_one_self_init_reads(prod_run: ProgramRun) -> None:
    secret = prod_run.object("Secret", "openbao-init")
    assert secret["metadata"]["namespace"] == parse_settings(stack_config("prod"), "prod").namespace
    assert set(secret["stringData"]) == {"admin-password"}
    (password,) = prod_run.of_type("random:index/randomPassword:RandomPassword")
    assert password.name == "openbao-credentials-admin-password"
    assert password.plain_props["length"] == 32 and password.plain_props["special"] is False


def test_bootstrap_credentials_stand_alone_without_stack_settings() -> None:
    built: list[BootstrapCredentials] = []

    def build() -> BootstrapCredentials:
        built.append(BootstrapCredentials("creds", {"secret_name": "team-init", "namespace": "team",
                                                    "password_item": "root-password", "password_length": 40,
                                                    "labels": {"team": "sec"}}))
        return built[0]

    run = run_components(build)
    (reg,) = [r for r in run.of_type("kubernetes:core/v1:Secret")]
    assert reg.props["stringData"].get(rpc._special_sig_key) == rpc._special_secret_sig, "the password must be secret"
    secret = run.object("Secret", "team-init")
    assert secret["metadata"] == {"name": "team-init", "namespace": "team", "labels": {"team": "sec"}}
    password = secret["stringData"]["root-password"]
    assert len(password) == 40 and set(password) <= set(string.ascii_letters + string.digits)
    (creds,) = built
    from pulumi.runtime.sync_await import _sync_await

    assert resolve(creds.admin_password) == password and _sync_await(creds.admin_password.is_secret())
    assert resolve(creds.secret_name) == "team-init"


def test_bootstrap_credentials_defaults() -> None:
    run = run_components(lambda: BootstrapCredentials("c", {"secret_name": "s", "namespace": "n"}))
    secret = run.object("Secret", "s")
    assert list(secret["stringData"]) == ["admin-password"] and len(secret["stringData"]["admin-password"]) == 32
    assert secret["metadata"]["labels"] == {}


@pytest.mark.parametrize("bad,problem", [
    ({"secret_name": "Bad_Name"}, 'BootstrapCredentialsArgs.secret_name = "Bad_Name": is not a valid Kubernetes object name'),
    ({"secret_name": None}, "BootstrapCredentialsArgs.secret_name = null: must be a string"),
    ({"namespace": "team.a"}, 'BootstrapCredentialsArgs.namespace = "team.a": is not a valid DNS-1123 label'),
    ({"password_length": 8}, "BootstrapCredentialsArgs.password_length = 8: is shorter than 16"),
    ({"password_length": "long"}, 'BootstrapCredentialsArgs.password_length = "long": must be a whole number'),
    ({"password_item": "a/b"}, 'BootstrapCredentialsArgs.password_item = "a/b": is not a valid Secret key'),
    ({"labels": {"team": 1}}, 'BootstrapCredentialsArgs.labels = {"team": 1}: must be a mapping of strings'),
    ({"password": "hunter2"}, 'BootstrapCredentialsArgs.password = "hunter2": is not a setting'),
])
def test_bootstrap_credentials_reject_bad_args_before_creating_anything(
        bad: dict[str, object], problem: str, monkeypatch: pytest.MonkeyPatch) -> None:
    args = {k: v for k, v in {"secret_name": "team-init", "namespace": "team", **bad}.items() if v is not None}
    rejected_args(lambda: BootstrapCredentials("creds", args), monkeypatch, problem)  # type: ignore[arg-type]


def test_bootstrap_credentials_schema_describes_every_input() -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    (comp,) = Analyzer("openbao-platform").analyze([BootstrapCredentials])["component_definitions"].values()
    assert set(comp.inputs) == {"secretName", "namespace", "passwordItem", "passwordLength", "labels"}
    assert all(p.description for p in comp.inputs.values())
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"secretName", "namespace"}
    assert set(comp.outputs) == {"secretName", "adminPassword"}
    assert all(p.description and p.type.value == "string" for p in comp.outputs.values())
