"""OpenBaoPlatform and __main__: outputs, secrecy, component conventions, fail-before-create."""

from __future__ import annotations

import itertools
from typing import Any, Iterator

import pulumi
import pytest

from openbao_platform.settings import SettingsError
from tests.support.program import ProgramRun, RecordingMocks, resolve, run_program, stack_config


def test_outputs(prod_run: ProgramRun, dev_run: ProgramRun) -> None:
    assert resolve(prod_run.outputs["api_url"]) == "https://bao.example.com"
    assert resolve(dev_run.outputs["api_url"]) == "https://openbao-active.openbao-dev.svc:8200"
    assert resolve(prod_run.outputs["namespace"]) == "openbao"
    assert "BEGIN CERTIFICATE" in resolve(prod_run.outputs["ca_cert_pem"])
    assert resolve(prod_run.outputs["service_names"])["active"] == "openbao-active"
    assert set(prod_run.outputs) == {"api_url", "ca_cert_pem", "namespace", "service_names", "admin_password"}


def test_admin_password_output_is_secret(prod_run: ProgramRun) -> None:
    out = prod_run.outputs["admin_password"]
    from pulumi.runtime.sync_await import _sync_await

    assert _sync_await(out.is_secret()) is True
    assert resolve(out) == prod_run.object("Secret", "openbao-init")["stringData"]["admin-password"]


def test_namespace_enforces_restricted_pod_security(prod_run: ProgramRun) -> None:
    ns = prod_run.object("Namespace", "openbao")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"


def test_component_type_tokens_and_child_names(prod_run: ProgramRun) -> None:
    components = [r for r in prod_run.registrations if not r.custom]
    # The package's tokens (openbao_platform/tokens.py), each aliased to the token it had before.
    assert {r.type for r in components} == {f"openbao-platform:index:{c}" for c in (
        "OpenBaoPlatform", "ClusterPki", "UnsealKey", "OpenBaoCluster", "BootstrapCredentials",
        "OpenBaoNetworkPolicies", "OpenBaoEdge", "OpenBaoBackup", "OpenBaoMonitoring", "OpenBaoConfiguration")}
    for r in components:
        if r.type.endswith(":OpenBaoConfiguration"):  # added after packaging: no previous token to alias
            assert not r.options.get("aliases"), r.options
            continue
        (previous,) = [a["type"] for a in r.options["aliases"] if set(a) == {"type"}]
        assert previous.startswith("openbao:") and previous.endswith(":" + r.type.rsplit(":", 1)[1])
    custom_names = [r.name for r in prod_run.registrations if r.custom]
    assert all(n.startswith("openbao-") for n in custom_names)
    assert len(custom_names) == len(set(custom_names))


@pytest.mark.parametrize("bad,key", [
    ({"replicas": 4}, "replicas"),
    ({"namespace": "Not Valid"}, "namespace"),
    ({"pki": {"serverValidityHours": 99999}}, "pki.serverValidityHours"),
    ({"ingress": {"mode": "nginx"}}, "ingress.host"),
])
def test_bad_config_fails_before_any_resource(bad: dict[str, Any], key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    recorded: list[RecordingMocks] = []
    original = RecordingMocks.__init__

    def spy(self: RecordingMocks) -> None:
        original(self)
        recorded.append(self)

    monkeypatch.setattr(RecordingMocks, "__init__", spy)
    with pytest.raises(SettingsError) as err:
        run_program("dev", {**stack_config("dev"), **bad})
    assert f"openbao-platform:{key} = " in str(err.value) and "Fix:" in str(err.value)
    assert recorded and recorded[0].registrations == [], "a resource was registered before validation failed"


def test_every_component_registers_outputs_last(monkeypatch: pytest.MonkeyPatch) -> None:
    """Spy on resource construction and register_outputs: nothing may join a component after it."""
    clock: Iterator[int] = itertools.count()
    created: list[tuple[int, Any, Any]] = []  # (tick, resource, parent)
    registered: dict[int, list[int]] = {}  # id(component) -> ticks
    components: list[pulumi.ComponentResource] = []

    orig_init = pulumi.Resource.__init__
    orig_register = pulumi.ComponentResource.register_outputs

    def init_spy(self: pulumi.Resource, t: str, name: str, custom: bool, props: Any = None,
                 opts: Any = None, *args: Any, **kwargs: Any) -> None:
        parent = opts.parent if opts is not None else None
        created.append((next(clock), self, parent))
        if isinstance(self, pulumi.ComponentResource):
            components.append(self)
        orig_init(self, t, name, custom, props, opts, *args, **kwargs)

    def register_spy(self: pulumi.ComponentResource, outputs: Any) -> None:
        registered.setdefault(id(self), []).append(next(clock))
        orig_register(self, outputs)

    monkeypatch.setattr(pulumi.Resource, "__init__", init_spy)
    monkeypatch.setattr(pulumi.ComponentResource, "register_outputs", register_spy)
    run_program("prod")
    ours = [c for c in components if type(c).__module__.startswith("openbao_platform.")]
    assert len(ours) >= 5
    for comp in ours:
        ticks = registered.get(id(comp))
        assert ticks and len(ticks) == 1, f"{type(comp).__name__} must call register_outputs exactly once"
        children = [tick for tick, _, parent in created if parent is comp]
        assert children, f"{type(comp).__name__} has no children"
        assert max(children) < ticks[0], f"{type(comp).__name__} created a child after register_outputs"
