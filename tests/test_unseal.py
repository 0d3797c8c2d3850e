"""UnsealKey: exactly 32 raw bytes, secret, mounted read-only, previous key kept on rotation."""

from __future__ import annotations

import base64

from openbao_platform.server_config import server_config
from tests.support.cluster import stack_spec
from tests.support.program import ProgramRun, run_program, stack_config


def _unseal_secret(run: ProgramRun):
    (reg,) = [r for r in run.of_type("kubernetes:core/v1:Secret") if r.props["metadata"]["name"] == "openbao-unseal"]
    return reg


def test_key_is_32_raw_bytes_without_newline(prod_run: ProgramRun) -> None:
    data = _unseal_secret(prod_run).plain_props["data"]
    assert set(data) == {"unseal-v1"}
    raw = base64.b64decode(data["unseal-v1"])
    assert len(raw) == 32


def test_key_is_secret_in_state(prod_run: ProgramRun) -> None:
    from pulumi.runtime import rpc

    props = _unseal_secret(prod_run).props
    assert props["data"].get(rpc._special_sig_key) == rpc._special_secret_sig


def test_key_comes_from_pulumi_random(prod_run: ProgramRun) -> None:
    (rb,) = prod_run.of_type("random:index/randomBytes:RandomBytes")
    assert rb.name == "openbao-unseal-v1" and rb.plain_props["length"] == 32


def test_rotation_keeps_previous_key_with_stable_names() -> None:
    raw = {**stack_config("dev"), "unseal": {"keyVersion": 2, "previousKeyVersion": 1}}
    run = run_program("dev", raw)
    names = sorted(r.name for r in run.of_type("random:index/randomBytes:RandomBytes"))
    # v1 keeps its resource name, so `pulumi up` keeps the same bytes and only adds v2.
    assert names == ["openbao-unseal-v1", "openbao-unseal-v2"]
    data = run.object("Secret", "openbao-unseal")["data"]
    assert set(data) == {"unseal-v1", "unseal-v2"} and data["unseal-v1"] != data["unseal-v2"]
    seal = server_config(stack_spec(raw, "dev"))["seal"]["static"]
    assert seal == {"current_key_id": "unseal-v2", "current_key": "file:///openbao/unseal/unseal-v2",
                    "previous_key_id": "unseal-v1", "previous_key": "file:///openbao/unseal/unseal-v1"}


def test_key_mounted_read_only(prod_run: ProgramRun) -> None:
    pod = prod_run.object("StatefulSet", "openbao")["spec"]["template"]["spec"]
    (vol,) = [v for v in pod["volumes"] if v["name"] == "unseal"]
    assert vol["secret"]["secretName"] == "openbao-unseal"
    assert int(vol["secret"]["defaultMode"]) == 0o440
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == "unseal"]
    assert mount["readOnly"] is True and mount["mountPath"] == "/openbao/unseal"


def test_unseal_key_never_exported(prod_run: ProgramRun) -> None:
    key = _unseal_secret(prod_run).plain_props["data"]["unseal-v1"]
    from tests.support.program import resolve

    for name, value in prod_run.outputs.items():
        assert key not in str(resolve(value)), name


# --- UnsealKey as a reusable component: narrow args, validated, analyzable --------------------


def test_unseal_key_stands_alone_without_stack_settings() -> None:
    from openbao_platform.unseal import UnsealKey
    from tests.support.component import run_components

    run = run_components(lambda: UnsealKey("keys", {"secret_name": "team-unseal", "namespace": "team",
                                                    "key_version": 3, "previous_key_version": 2}))
    assert sorted(r.name for r in run.of_type("random:index/randomBytes:RandomBytes")) == ["keys-v2", "keys-v3"]
    secret = run.object("Secret", "team-unseal")
    assert secret["metadata"]["namespace"] == "team" and set(secret["data"]) == {"unseal-v2", "unseal-v3"}
    assert all(r.options["protect"] for r in run.registrations if r.custom)  # secure default


def test_unseal_key_rejects_bad_args_before_creating_anything() -> None:
    import pytest

    from openbao_platform.settings import ArgsError
    from openbao_platform.unseal import UnsealKey
    from tests.support.component import run_components

    made: list[object] = []
    with pytest.raises(ArgsError) as err:
        made = run_components(lambda: UnsealKey("keys", {"secret_name": "Bad_Name", "namespace": "team",
                                                         "key_version": 2, "previous_key_version": 2})).registrations
    text = str(err.value)
    assert "UnsealKeyArgs.secret_name = \"Bad_Name\": is not a valid Kubernetes object name" in text
    assert "UnsealKeyArgs.previous_key_version = 2: must be lower than" in text and "Fix:" in text
    assert made == []


def test_unseal_key_schema_describes_every_input() -> None:
    from pulumi.provider.experimental.analyzer import Analyzer

    from openbao_platform.unseal import UnsealKey

    (comp,) = Analyzer("openbao-platform").analyze([UnsealKey])["component_definitions"].values()
    assert set(comp.inputs) == {"secretName", "namespace", "keyVersion", "previousKeyVersion", "labels", "protect"}
    assert all(p.description for p in comp.inputs.values())
    assert {k for k, p in comp.inputs.items() if not p.optional} == {"secretName", "namespace"}
