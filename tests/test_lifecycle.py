"""What a real `pulumi up` / `destroy` does to state: protection, aliases, in-place Secrets, awaits.

The engine is absent, so these check what the program *sends* it: each RegisterResource
request's options (recorded by tests.support.program.RecordingMonitor) and the provider
annotations on the objects. The behaviour those options cause is cited in openbao_platform/lifecycle.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from openbao_platform.lifecycle import AWAIT_DECISIONS, ORPHAN_ON_DELETE, SKIP_AWAIT
from openbao_platform.settings import PROVIDER_FLAGS, SettingsError, parse_settings, provider_problems
from tests.support.program import ROOT, ProgramRun, Registration, run_program, stack_config

URN_LIST = Path(__file__).with_name("stateful_urns.json")

#: Pulumi resource names (as the default-named stacks register them) that must be protected.
PROTECTED = {"openbao-namespace", "openbao-unseal-v1", "openbao-unseal-secret", "openbao-pki-ca-key",
             "openbao-pki-ca-cert", "openbao-cluster-statefulset", "openbao-backup-pvc"}
#: ... and of those, what must stay in the cluster when it leaves the stack.
RETAINED = {"openbao-namespace", "openbao-unseal-secret", "openbao-backup-pvc"}


def _flagged(run: ProgramRun, option: str) -> set[str]:
    return {r.name for r in run.registrations if r.options.get(option)}


def test_production_protects_exactly_the_irreplaceable_state(prod_run: ProgramRun) -> None:
    assert _flagged(prod_run, "protect") == PROTECTED
    assert _flagged(prod_run, "retainOnDelete") == RETAINED


def test_dev_stack_tears_down_completely(dev_run: ProgramRun) -> None:
    assert stack_config("dev")["protect"] is False
    assert _flagged(dev_run, "protect") == set()
    assert _flagged(dev_run, "retainOnDelete") == set()


def test_protect_defaults_to_production() -> None:
    assert parse_settings({"production": True, "replicas": 3}, "s").protect is True
    assert parse_settings({}, "s").protect is False
    assert parse_settings({"production": True, "protect": False}, "s").protect is False


def test_protect_must_be_a_boolean() -> None:
    with pytest.raises(SettingsError) as err:
        parse_settings({"protect": "yes"}, "s")
    assert 'openbao-platform:protect = "yes"' in str(err.value) and "Fix:" in str(err.value)


def test_every_key_version_is_protected_while_rotating() -> None:
    raw = stack_config("prod")
    raw["unseal"] = {"keyVersion": 2, "previousKeyVersion": 1}
    run = run_program("prod", raw)
    assert {"openbao-unseal-v1", "openbao-unseal-v2"} <= _flagged(run, "protect")


def test_stateful_urns_are_exactly_the_committed_list() -> None:
    """A refactor that moves a stateful resource must add an alias, then update the list."""
    committed = json.loads(URN_LIST.read_text())
    for stack in ("prod", "dev"):
        raw = stack_config(stack)
        raw["protect"] = True
        run = run_program(stack, raw)
        assert sorted(r.urn for r in run.registrations if r.options.get("protect")) == committed[stack], stack


def test_renaming_the_name_setting_keeps_every_urn(prod_run: ProgramRun) -> None:
    """URNs do not follow `name`: a rename replaces (protected) Kubernetes objects, never the keys."""
    raw = stack_config("prod")
    raw["name"] = "vault"
    renamed = run_program("prod", raw)
    def kept(run: ProgramRun) -> set[str]:
        """Stateful resources and all key material (Services are named by role and may move)."""
        return {r.urn for r in run.registrations if r.name in PROTECTED or r.type.split(":")[0] in ("tls", "random")}

    assert kept(renamed) == kept(prod_run) and len(kept(prod_run)) == len(PROTECTED) + 4
    root = renamed.by_name("openbao")
    # Stacks created when the platform was named after `name` keep their state through this alias;
    # the engine extends it to every child (step_generator.go generateAliases).
    previous = "openbao:platform:OpenBaoPlatform"  # the token before packaging (openbao_platform/tokens.py)
    assert root.options["aliases"] == [{"name": "vault", "type": previous}, {"type": previous}]
    assert prod_run.by_name("openbao").options["aliases"] == [{"type": previous}]
    assert renamed.object("StatefulSet", "vault")["metadata"]["name"] == "vault"


# --- Secrets and ConfigMaps update in place ---------------------------------------------------


def _stack_files() -> list[Path]:
    return sorted(ROOT.glob("Pulumi.*.yaml")) + sorted((ROOT / "examples").glob("**/Pulumi.*.yaml"))


@pytest.mark.parametrize("path", _stack_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_stack_file_makes_secrets_and_configmaps_mutable(path: Path) -> None:
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    for flag in PROVIDER_FLAGS:
        assert config.get(f"kubernetes:{flag}") is True, f"{path.name}: set kubernetes:{flag}: true"


def test_program_refuses_to_run_without_the_mutable_flags(tmp_path: Path) -> None:
    """Bad provider config is an error naming the key and the fix, raised before any resource."""
    (tmp_path / "__main__.py").write_text((ROOT / "__main__.py").read_text())
    (tmp_path / "Pulumi.bare.yaml").write_text(yaml.safe_dump({"config": {"openbao-platform:replicas": 3}}))
    mocks_seen: list[Registration] = []
    with pytest.raises(SettingsError) as err:
        mocks_seen = run_program("bare", {"replicas": 3}, root=tmp_path).registrations
    text = str(err.value)
    for flag in PROVIDER_FLAGS:
        assert f"kubernetes:{flag}" in text and f"pulumi config set kubernetes:{flag} true" in text
    assert mocks_seen == []


@pytest.mark.parametrize("config,env,bad", [
    ({"kubernetes:enableSecretMutable": "true", "kubernetes:enableConfigMapMutable": "true"}, {}, []),
    ({"kubernetes:enableSecretMutable": True, "kubernetes:enableConfigMapMutable": True}, {}, []),
    ({}, {"PULUMI_K8S_ENABLE_SECRET_MUTABLE": "true", "PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE": "true"}, []),
    # The provider compares with the exact string "true": "True" and "1" leave it off.
    ({"kubernetes:enableSecretMutable": "True", "kubernetes:enableConfigMapMutable": "1"}, {},
     ["enableSecretMutable", "enableConfigMapMutable"]),
    # Stack config wins over the environment, as in the provider.
    ({"kubernetes:enableSecretMutable": "false"}, {"PULUMI_K8S_ENABLE_SECRET_MUTABLE": "true",
                                                   "PULUMI_K8S_ENABLE_CONFIGMAP_MUTABLE": "true"},
     ["enableSecretMutable"]),
    ({}, {}, ["enableSecretMutable", "enableConfigMapMutable"]),
])
def test_provider_flags_are_judged_as_the_provider_reads_them(config: dict[str, Any], env: dict[str, str],
                                                              bad: list[str]) -> None:
    problems = provider_problems(config, env)
    assert [p.split(" ")[0].split(":")[1] for p in problems] == bad


def test_no_secret_or_configmap_opts_back_into_replacement(prod_run: ProgramRun, dev_run: ProgramRun) -> None:
    """`immutable: true` or replaceOnChanges would bring delete-then-create back (diff.go)."""
    for run in (prod_run, dev_run):
        for reg in run.kubernetes_objects():
            kind = reg.plain_props.get("kind")
            if kind in ("Secret", "ConfigMap"):
                assert reg.plain_props.get("immutable") in (None, False), reg.name
                assert not reg.options["replaceOnChanges"] and not reg.options["deleteBeforeReplace"], reg.name


# --- Awaits -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gateway_run() -> ProgramRun:
    raw = stack_config("prod")
    raw["ingress"] = {"mode": "gateway", "host": "bao.example.com"}
    return run_program("prod", raw)


def _annotations(reg: Registration) -> dict[str, str]:
    return (reg.plain_props.get("metadata") or {}).get("annotations") or {}


def test_every_kind_has_an_await_decision_and_follows_it(prod_run: ProgramRun, dev_run: ProgramRun,
                                                         gateway_run: ProgramRun) -> None:
    seen: set[str] = set()
    for run in (prod_run, dev_run, gateway_run):
        for reg in run.kubernetes_objects():
            kind = reg.plain_props["kind"]
            seen.add(kind)
            assert kind in AWAIT_DECISIONS, f"{kind}: add its await decision to openbao_platform/lifecycle.py"
            skips = _annotations(reg).get("pulumi.com/skipAwait") == "true"
            assert skips == AWAIT_DECISIONS[kind].startswith("skipAwait"), f"{kind} {reg.name}"
    assert {"StatefulSet", "Service", "Ingress", "HTTPRoute", "BackendTLSPolicy", "ServiceMonitor",
            "PrometheusRule", "PersistentVolumeClaim"} <= seen


def test_statefulset_waits_for_its_pods_long_enough(prod_run: ProgramRun, dev_run: ProgramRun) -> None:
    for run in (prod_run, dev_run):
        sts = run.by_name("openbao-cluster-statefulset")
        assert "pulumi.com/skipAwait" not in _annotations(sts)
        assert sts.options["customTimeouts"] == {"create": "30m", "update": "30m", "delete": "10m"}


def test_statefulset_deletion_orphans_its_pods(prod_run: ProgramRun) -> None:
    """A replacement (after an explicit unprotect) must not take every voter down at once."""
    sts = prod_run.by_name("openbao-cluster-statefulset")
    assert ORPHAN_ON_DELETE.items() <= _annotations(sts).items()
    assert SKIP_AWAIT == {"pulumi.com/skipAwait": "true"}
    # ... and its volumes outlive it and any scale-down.
    assert sts.plain_props["spec"]["persistentVolumeClaimRetentionPolicy"] == {
        "whenDeleted": "Retain", "whenScaled": "Retain"}


def test_render_shows_the_options_to_reviewers(tmp_path: Path) -> None:
    from tools.render import render

    render("prod", tmp_path)
    resources = {r["name"]: r for r in json.loads((tmp_path / "resources.json").read_text())}
    assert resources["openbao-unseal-secret"]["options"] == {"protect": True, "retainOnDelete": True}
    assert resources["openbao-cluster-statefulset"]["options"]["customTimeouts"]["create"] == "30m"
    assert "options" in resources["openbao-cluster-config"] and not resources["openbao-cluster-config"]["options"]
