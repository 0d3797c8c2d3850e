"""What changing a settings key does to a live stack: the classifier, the vendored provider
rules it applies, and the README column that must agree with what it computes."""

from __future__ import annotations

import copy
from typing import Any, Optional

import pytest

from tests.support.fakes import FAKES
from tests.support.program import Registration
from tools import change_impact as ci

MUTABLE = {"enableSecretMutable": True, "enableConfigMapMutable": True}
IMMUTABLE = {"enableSecretMutable": False, "enableConfigMapMutable": False}
PARENT = "openbao:platform:OpenBaoPlatform$openbao:cluster:OpenBaoCluster"


def k8s(kind: str, name: str, body: dict[str, Any], *, api: str = "v1", resource: Optional[str] = None,
        parent: str = PARENT, **options: Any) -> Registration:
    """A hand-made Kubernetes registration as the harness records one."""
    group, _, version = api.rpartition("/")
    token = f"kubernetes:{group or 'core'}/{version}:{kind}"
    resource = resource or f"r-{name}"
    props = {"apiVersion": api, "kind": kind, "metadata": {"name": name, "namespace": "openbao"}, **body}
    opts = {"protect": False, "retainOnDelete": False, "deleteBeforeReplace": False, "ignoreChanges": [],
            "replaceOnChanges": [], "aliases": [], "dependsOn": [], "provider": "", **options}
    return Registration(token, resource, props, True, urn=ci.make_urn("prod", "openbao-platform", parent, token, resource),
                        options=opts)


def bridged(type_: str, name: str, props: dict[str, Any], **options: Any) -> Registration:
    opts = {"protect": False, "retainOnDelete": False, "aliases": [], "dependsOn": [], "ignoreChanges": [],
            "replaceOnChanges": [], **options}
    return Registration(type_, name, props, True, urn=ci.make_urn("prod", "openbao-platform", PARENT, type_, name),
                        options=opts)


def statefulset(**spec: Any) -> Registration:
    base = {"replicas": 3, "serviceName": "openbao-internal", "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": {"app": "openbao"}},
            "template": {"metadata": {"annotations": {"hash": "1"}}, "spec": {"containers": [{"image": "bao:1"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                                      "spec": {"resources": {"requests": {"storage": "10Gi"}}}}]}
    base.update(spec)
    return k8s("StatefulSet", "openbao", {"spec": base}, api="apps/v1")


def changed(reg: Registration, path: str, value: Any) -> Registration:
    """A copy with one dotted input path set."""
    new = copy.deepcopy(reg)
    new.props = ci.apply_changes(new.props, {path: value})
    return new


def one(old: Registration, new: Registration, flags: dict[str, bool] = MUTABLE) -> ci.ResourceChange:
    return ci.classify_pair(old, new, flags)


# --- Kubernetes rules ------------------------------------------------------------------


def test_statefulset_volume_claim_templates_change_replaces_delete_first() -> None:
    old = statefulset()
    new = changed(old, "spec.volumeClaimTemplates", [{"metadata": {"name": "data"},
                                                      "spec": {"resources": {"requests": {"storage": "20Gi"}}}}])
    c = one(old, new)
    assert (c.action, c.delete_first) == (ci.REPLACE, True)
    assert c.replace_paths == ["spec.volumeClaimTemplates[0].spec.resources.requests.storage"]


@pytest.mark.parametrize("path", ["spec.serviceName", "spec.podManagementPolicy", "spec.selector.matchLabels.app"])
def test_other_statefulset_force_new_fields_replace(path: str) -> None:
    old = statefulset()
    assert one(old, changed(old, path, "other")).action == ci.REPLACE


def test_statefulset_replicas_update_in_place_and_template_needs_the_rollout() -> None:
    old = statefulset()
    scaled = one(old, changed(old, "spec.replicas", 5))
    assert (scaled.action, scaled.template_changed) == (ci.UPDATE, False)
    assert ci.summarise([scaled]) == "in place"
    image = one(old, changed(old, "spec.template.spec.containers", [{"image": "bao:2"}]))
    assert (image.action, image.template_changed) == (ci.UPDATE, True)
    assert ci.summarise([image]) == "needs the rollout"


@pytest.mark.parametrize("kind,field", [("Secret", "stringData"), ("Secret", "data"), ("ConfigMap", "data")])
def test_data_change_replaces_unless_the_provider_flag_is_on(kind: str, field: str) -> None:
    old = k8s(kind, "openbao-tls", {field: {"tls.crt": "a"}})
    new = copy.deepcopy(old)
    new.props[field]["tls.crt"] = "b"
    on, off = one(old, new, MUTABLE), one(old, new, IMMUTABLE)
    assert on.action == ci.UPDATE
    assert (off.action, off.delete_first) == (ci.REPLACE, True)


def test_immutable_secret_replaces_even_with_the_flag() -> None:
    old = k8s("Secret", "s", {"immutable": True, "data": {"k": "YQ=="}})
    new = copy.deepcopy(old)
    new.props["data"]["k"] = "Yg=="
    assert one(old, new, MUTABLE).action == ci.REPLACE


def test_secret_type_always_replaces() -> None:
    old = k8s("Secret", "s", {"type": "Opaque", "data": {}})
    assert one(old, changed(old, "type", "kubernetes.io/tls"), MUTABLE).action == ci.REPLACE


def test_pvc_storage_class_replaces_but_size_updates() -> None:
    old = k8s("PersistentVolumeClaim", "backup", {"spec": {"storageClassName": "a",
                                                            "resources": {"requests": {"storage": "1Gi"}}}})
    assert one(old, changed(old, "spec.storageClassName", "b")).action == ci.REPLACE
    assert one(old, changed(old, "spec.resources.requests.storage", "2Gi")).action == ci.UPDATE


def test_pdb_spec_replaces_only_in_policy_v1beta1() -> None:
    v1 = k8s("PodDisruptionBudget", "pdb", {"spec": {"maxUnavailable": 1}}, api="policy/v1")
    beta = k8s("PodDisruptionBudget", "pdb", {"spec": {"maxUnavailable": 1}}, api="policy/v1beta1")
    assert one(v1, changed(v1, "spec.maxUnavailable", 2)).action == ci.UPDATE
    assert one(beta, changed(beta, "spec.maxUnavailable", 2)).action == ci.REPLACE


def test_name_change_replaces_create_first_and_namespace_too() -> None:
    old = k8s("Namespace", "openbao", {})
    renamed = one(old, changed(old, "metadata.name", "openbao-b"))
    assert (renamed.action, renamed.delete_first) == (ci.REPLACE, False)
    svc = k8s("Service", "api", {"spec": {"ports": [{"port": 8200}]}})
    moved = one(svc, changed(svc, "metadata.namespace", "other"))
    assert (moved.action, moved.delete_first) == (ci.REPLACE, False)


def test_rolebinding_roleref_replaces() -> None:
    old = k8s("RoleBinding", "rb", {"roleRef": {"name": "a"}}, api="rbac.authorization.k8s.io/v1")
    assert one(old, changed(old, "roleRef.name", "b")).action == ci.REPLACE


def test_numbers_compare_like_the_provider() -> None:
    old = statefulset()
    assert one(old, changed(old, "spec.replicas", 3.0)).action == ci.SAME


def test_options_ignore_replace_on_changes_trigger_and_dbr() -> None:
    old = statefulset()
    ignored = changed(old, "spec.replicas", 5)
    ignored.options["ignoreChanges"] = ["spec.replicas"]
    assert one(old, ignored).action == ci.SAME
    forced = changed(old, "spec.replicas", 5)
    forced.options["replaceOnChanges"] = ["spec.replicas"]
    assert one(old, forced).action == ci.REPLACE
    triggered = copy.deepcopy(old)
    old_t = copy.deepcopy(old)
    old_t.options["replacementTrigger"] = {"stringValue": "1"}
    triggered.options["replacementTrigger"] = {"stringValue": "2"}
    assert one(old_t, triggered).replace_paths == ["(replacementTrigger)"]
    svc = k8s("Service", "api", {})
    renamed = changed(svc, "metadata.name", "api2")
    renamed.options["deleteBeforeReplace"] = True
    assert one(svc, renamed).delete_first is True


def test_rule_matching_follows_the_providers_jsonpath_slice() -> None:
    rule = ci.parse_rule_path(".spec.volumeClaimTemplates")
    assert ci.rule_matches(rule, ("spec", "volumeClaimTemplates", 0, "spec"), ci.UPDATE, "x")
    assert ci.rule_matches(rule, ("spec",), "add", {"volumeClaimTemplates": []})
    assert not ci.rule_matches(rule, ("spec",), "add", {"replicas": 3})
    assert not ci.rule_matches(rule, ("spec",), ci.DELETE, None)
    container = ci.parse_rule_path(".spec.containers[*].image")
    assert ci.rule_matches(container, ("spec", "containers", 2, "image"), ci.UPDATE, "x")
    assert not ci.rule_matches(container, ("spec", "containers", 2, "name"), ci.UPDATE, "x")


def test_force_new_paths_expand_the_vendored_table() -> None:
    sts = ci.force_new_paths({"apiVersion": "apps/v1", "kind": "StatefulSet"}, MUTABLE)
    assert {".metadata.name", ".metadata.namespace", ".spec.volumeClaimTemplates", ".spec.serviceName",
            ".spec.selector", ".spec.podManagementPolicy", ".spec.revisionHistoryLimit",
            ".spec.selector.matchLabels"} <= set(sts)
    pod = ci.force_new_paths({"apiVersion": "v1", "kind": "Pod"}, MUTABLE)
    assert ".spec.containers[*].image" in pod and ".spec.initContainers[*].env.value" in pod
    assert ci.force_new_paths({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy"}, MUTABLE) == \
        [".metadata.name", ".metadata.namespace"]


# --- The engine: protection, URNs and aliases --------------------------------------------


def test_protected_replace_is_refused_only_when_protected_before_and_after() -> None:
    old = statefulset()
    old.options["protect"] = True
    new = changed(old, "spec.serviceName", "other")
    c = one(old, new)
    assert c.refused and ci.summarise([c]) == "refused (protected: StatefulSet openbao)"
    unprotected = copy.deepcopy(new)
    unprotected.options["protect"] = False
    assert not one(old, unprotected).refused
    assert not one(old, changed(old, "spec.replicas", 5)).refused  # an update is never refused


def _run(*regs: Registration) -> ci.ProgramRun:
    return ci.ProgramRun(stack="prod", registrations=list(regs))


def test_urn_rename_without_alias_is_delete_plus_create_and_protected_delete_is_refused() -> None:
    old = k8s("PersistentVolumeClaim", "backup", {"spec": {}}, resource="backup-pvc", protect=True, retainOnDelete=True)
    new = k8s("PersistentVolumeClaim", "backup", {"spec": {}}, resource="backup-volume")
    changes = ci.classify(_run(old), _run(new), MUTABLE)
    assert sorted((c.action, c.name) for c in changes) == [(ci.CREATE, "backup-volume"), (ci.DELETE, "backup-pvc")]
    deleted = next(c for c in changes if c.action == ci.DELETE)
    assert deleted.refused and deleted.retained
    assert ci.summarise(changes) == "refused (protected: PersistentVolumeClaim backup)"


def test_urn_rename_with_alias_is_the_same_resource() -> None:
    old = k8s("PersistentVolumeClaim", "backup", {"spec": {}}, resource="backup-pvc")
    new = k8s("PersistentVolumeClaim", "backup", {"spec": {}}, resource="backup-volume",
              aliases=[{"name": "backup-pvc"}])
    changes = ci.classify(_run(old), _run(new), MUTABLE)
    assert [(c.action, c.name) for c in changes] == [(ci.SAME, "backup-volume")]
    assert ci.summarise(changes) == "no change"


def test_type_and_parent_aliases() -> None:
    old = k8s("StatefulSet", "openbao", {"spec": {}}, api="apps/v1beta2", resource="sts")
    new = k8s("StatefulSet", "openbao", {"spec": {}}, api="apps/v1", resource="sts",
              aliases=[{"type": "kubernetes:apps/v1beta2:StatefulSet"}])
    new.props["apiVersion"] = old.props["apiVersion"]
    assert [c.action for c in ci.classify(_run(old), _run(new), MUTABLE)] == [ci.SAME]
    moved_old = k8s("Secret", "s", {}, resource="s", parent="openbao:platform:OpenBaoPlatform")
    moved_new = k8s("Secret", "s", {}, resource="s",
                    aliases=[{"parentUrn": "urn:pulumi:prod::openbao-platform::openbao:platform:OpenBaoPlatform::openbao"}])
    assert [c.action for c in ci.classify(_run(moved_old), _run(moved_new), MUTABLE)] == [ci.SAME]


def test_parent_alias_is_inherited_by_children() -> None:
    comp = "openbao:cluster:OpenBaoCluster"
    old_parent = Registration(comp, "old", {}, False, urn=ci.make_urn("prod", "openbao-platform", "", comp, "old"),
                              options={"aliases": []})
    new_parent = Registration(comp, "new", {}, False, urn=ci.make_urn("prod", "openbao-platform", "", comp, "new"),
                              options={"aliases": [{"name": "old"}]})
    old_child = k8s("Secret", "s", {}, resource="old-secret", parent=comp)
    new_child = k8s("Secret", "s", {}, resource="new-secret", parent=comp)
    changes = ci.classify(_run(old_parent, old_child), _run(new_parent, new_child), MUTABLE)
    assert sorted(c.action for c in changes) == [ci.SAME, ci.SAME]


def test_delete_before_replace_cascades_to_dependents_that_would_replace() -> None:
    secret = k8s("Secret", "tls", {"data": {"k": "YQ=="}})
    binding = k8s("RoleBinding", "rb", {"roleRef": {"name": "a"}}, api="rbac.authorization.k8s.io/v1",
                  dependsOn=[secret.urn])
    sts = statefulset()
    sts.options["dependsOn"] = [secret.urn]
    new_secret = copy.deepcopy(secret)
    new_secret.props["data"]["k"] = "Yg=="
    changes = {c.name: c for c in ci.classify(_run(secret, binding, sts), _run(new_secret, binding, sts), IMMUTABLE)}
    assert changes[secret.name].action == ci.REPLACE and changes[secret.name].delete_first
    assert changes[binding.name].action == ci.REPLACE  # .roleRef is a whole top-level input
    assert changes[sts.name].action == ci.SAME  # its force-new paths lie below `spec`
    protected = copy.deepcopy(binding)
    protected.options["protect"] = True
    cascaded = ci.classify(_run(secret, protected), _run(new_secret, protected), IMMUTABLE)
    assert "refused (protected: RoleBinding rb)" == ci.summarise(cascaded)
    assert all(c.action != ci.REPLACE for c in ci.classify(_run(secret, binding), _run(new_secret, binding), MUTABLE))


# --- tls / random ---------------------------------------------------------------------------

CERT = "tls:index/locallySignedCert:LocallySignedCert"


def test_tls_inputs_replace_except_early_renewal_hours() -> None:
    old = bridged(CERT, "server-cert", {"validityPeriodHours": 2160, "earlyRenewalHours": 720, "allowedUses": ["a"]})
    assert one(old, changed(old, "earlyRenewalHours", 360)).action == ci.UPDATE
    assert one(old, changed(old, "validityPeriodHours", 1000)).action == ci.REPLACE
    with pytest.raises(KeyError, match="no rule"):
        one(old, changed(old, "someNewInput", True))


def test_random_inputs_all_replace_and_protected_key_is_refused() -> None:
    old = bridged("random:index/randomBytes:RandomBytes", "unseal-v1", {"length": 32}, protect=True)
    c = one(old, changed(old, "length", 64))
    assert (c.action, c.refused, c.delete_first) == (ci.REPLACE, True, False)


def test_every_tls_and_random_input_the_program_sends_has_a_rule(prod_run: ci.ProgramRun,
                                                                 dev_run: ci.ProgramRun) -> None:
    for reg in prod_run.registrations + dev_run.registrations:
        if reg.type.startswith(("tls:", "random:")):
            assert set(reg.props) <= set(ci.BRIDGED["inputs"][reg.type]), reg.type


def test_content_addressed_fakes_mirror_the_real_fakes_and_follow_replacement() -> None:
    inputs = {"tls:index/privateKey:PrivateKey": {"algorithm": "ECDSA", "ecdsaCurve": "P256"},
              "random:index/randomBytes:RandomBytes": {"length": 32},
              "random:index/randomPassword:RandomPassword": {"length": 32, "special": False}}
    for type_, i in inputs.items():
        ci.CONTENT_ADDRESSED.local.name, ci.CONTENT_ADDRESSED.local.trigger = "x", None
        fake = ci.CONTENT_ADDRESSED.get(type_)(i)
        assert set(fake) == set(FAKES[type_](i)), type_
        assert fake == ci.CONTENT_ADDRESSED.get(type_)(i)
    ci.CONTENT_ADDRESSED.local.name = "server-cert"
    cert = {"certRequestPem": "csr", "caPrivateKeyPem": "k", "caCertPem": "ca", "validityPeriodHours": 10,
            "earlyRenewalHours": 2, "allowedUses": []}
    same = ci.CONTENT_ADDRESSED.get(CERT)(cert)["certPem"]
    assert ci.CONTENT_ADDRESSED.get(CERT)({**cert, "earlyRenewalHours": 1})["certPem"] == same  # in-place update
    assert ci.CONTENT_ADDRESSED.get(CERT)({**cert, "certRequestPem": "csr2"})["certPem"] != same  # re-issued
    ci.CONTENT_ADDRESSED.local.trigger = {"stringValue": "epoch-2"}
    assert ci.CONTENT_ADDRESSED.get(CERT)(cert)["certPem"] != same  # replaced by its trigger


# --- The settings keys, the samples and the README column -----------------------------------


@pytest.fixture(scope="module")
def table() -> dict[str, dict[str, list[ci.Outcome]]]:
    return ci.Analysis().table(ci.STACKS)


def test_settings_keys_come_from_the_parser() -> None:
    keys = ci.settings_keys()
    assert len(keys) == len(set(keys))
    assert {"namespace", "protect", "storage.dataSize", "ingress.gatewayProxyPodLabels", "backup.size"} <= set(keys)
    assert set(keys) == set(ci.SAMPLES), "every settings key needs a representative change, and only those"


def test_storage_data_size_is_refused_in_prod(table: dict[str, dict[str, list[ci.Outcome]]]) -> None:
    prod, dev = table["storage.dataSize"]["prod"], table["storage.dataSize"]["dev"]
    assert [o.summary for o in prod] == ["refused (protected: StatefulSet openbao)"]
    assert [o.summary for o in dev] == ["replaces StatefulSet openbao (deleted first, pods orphaned)"]


def test_readme_rows_document_exactly_the_settings_keys() -> None:
    documented = [k for keys, _ in ci.readme_rows(ci.README.read_text()) for k in keys]
    keys = ci.settings_keys()
    assert sorted(set(documented) - set(keys)) == [], "README documents keys the parser does not accept"
    assert sorted(set(keys) - set(documented)) == [], "settings keys missing from the README table"


def test_readme_column_matches_what_the_tool_computes(table: dict[str, dict[str, list[ci.Outcome]]]) -> None:
    text = ci.README.read_text()
    header = ci._cells(text.splitlines()[ci._table_bounds(text.splitlines())[0]])
    assert header[-1] == ci.COLUMN, f"the config table needs a last column {ci.COLUMN!r}"
    stale = [(keys, cells[-1], ci.row_cell(keys, table)) for keys, cells in ci.readme_rows(text)
             if cells[-1] != ci.row_cell(keys, table)]
    assert not stale, ("README.md config table disagrees with tools/change_impact.py; run "
                       "`.venv/bin/python -m tools.change_impact --write-readme`:\n"
                       + "\n".join(f"{k}: README {r!r}, computed {c!r}" for k, r, c in stale))


def test_a_documented_key_without_a_result_fails(table: dict[str, dict[str, list[ci.Outcome]]]) -> None:
    text = ci.README.read_text().replace("| `tlsMinVersion` |", "| `tlsMinVersion` / `tlsMaxVersion` |", 1)
    with pytest.raises(KeyError, match="tlsMaxVersion"):
        ci.render_readme(text, table)


def test_render_readme_is_idempotent_and_touches_only_the_table(table: dict[str, dict[str, list[ci.Outcome]]]) -> None:
    text = ci.README.read_text()
    once = ci.render_readme(text, table)
    assert ci.render_readme(once, table) == once
    outside = [l for l in text.splitlines() if not l.startswith("|")]
    assert [l for l in once.splitlines() if not l.startswith("|")] == outside


def test_invalid_or_ineffective_samples_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ci.SAMPLES, "replicas", lambda s: ci._one("replicas", 4))
    with pytest.raises(ValueError, match="not valid"):
        ci.Analysis().scenarios("replicas", "prod")
    monkeypatch.setitem(ci.SAMPLES, "replicas", lambda s: ci._one("replicas", s.replicas))
    with pytest.raises(ValueError, match="does not change"):
        ci.Analysis().scenarios("replicas", "prod")


def test_cli_prints_the_markdown_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert ci.main(["--stack", "prod", "--key", "storage.dataSize"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| key | representative change | prod |"
    assert lines[2] == '| `storage.dataSize` | `storage.dataSize` "40Gi" | refused (protected: StatefulSet openbao) |'
