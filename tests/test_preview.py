"""The first preview of a new stack: the program runs, and what the pack checks is known.

In a first ``pulumi preview`` every resource is a create: the computed outputs of ``tls:*``
and ``random:*`` (keys, certificates, random bytes) are unknown and pulumi-kubernetes echoes
its inputs, so ``metadata.name`` stays known (``tests/support/program.PreviewMocks`` cites the
sources). Anything built from an unknown is unknown too, and a policy rule that reads an
unknown value is downgraded to an advisory "can't run ... during preview". So: the program
must not fail; every object a mandatory rule inspects must be fully known; and what is
unknown is exactly the committed list below (Secret data and the content derived from
certificates), so a change that makes more of the stack unknown fails here first.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.preview import INSPECTED_KINDS, VARIANTS, object_key, preview_run, up_run
from tests.support.program import ProgramRun

#: Unknown inputs in every variant: the certificate chain's inputs that are other tls outputs,
#: and the four Secrets whose data is key material (the whole map is one Output, so its keys
#: are unknown as well as its values).
_COMMON: dict[str, list[str]] = {
    "tls:index/selfSignedCert:SelfSignedCert openbao-pki-ca-cert": ["privateKeyPem"],
    "tls:index/certRequest:CertRequest openbao-pki-server-csr": ["privateKeyPem"],
    "tls:index/locallySignedCert:LocallySignedCert openbao-pki-server-cert":
        ["caCertPem", "caPrivateKeyPem", "certRequestPem"],
    "Secret openbao-tls": ["stringData"],      # server cert, key, CA (pulumi-tls)
    "Secret openbao-ca": ["stringData"],       # the CA certificate (pulumi-tls)
    "Secret openbao-unseal": ["data"],         # static-seal key(s) (pulumi-random)
    "Secret openbao-init": ["stringData"],     # break-glass admin password (pulumi-random)
}
#: With monitoring on, the PrometheusRule's spec embeds the server certificate's renewal time.
_MONITORING = {"PrometheusRule openbao": ["spec"]}
#: In gateway mode the BackendTLSPolicy's CA ConfigMap carries the CA certificate.
_GATEWAY_CA = {"ConfigMap openbao-ca": ["data.ca.crt"]}

EXPECTED_UNKNOWN: dict[str, dict[str, list[str]]] = {
    "prod": {**_COMMON, **_MONITORING},
    "dev": dict(_COMMON),
    "prod-gateway": {**_COMMON, **_MONITORING, **_GATEWAY_CA},
    "dev-gateway": {**_COMMON, **_GATEWAY_CA},
}

#: Kinds each variant must render (so "every object of the kind is known" cannot pass empty).
_ALWAYS = {"StatefulSet", "CronJob", "Role", "RoleBinding", "ClusterRoleBinding", "NetworkPolicy", "Service",
           "PodDisruptionBudget", "ServiceAccount"}
EXPECTED_KINDS = {
    "prod": _ALWAYS | {"Ingress", "ServiceMonitor"},
    "dev": _ALWAYS,
    "prod-gateway": _ALWAYS | {"HTTPRoute", "BackendTLSPolicy", "ServiceMonitor"},
    "dev-gateway": _ALWAYS | {"HTTPRoute", "BackendTLSPolicy"},
}

pytestmark = pytest.mark.parametrize("variant", list(VARIANTS))


def _unknown(run: ProgramRun) -> dict[str, list[str]]:
    return {object_key(r): sorted(r.unknown_paths) for r in run.registrations if r.unknown_paths}


def test_program_registers_the_same_resources_in_preview(variant: str) -> None:
    """The program does not fail in a first preview and skips nothing: every resource
    ``pulumi up`` would create is registered, with the same type, name and URN."""
    preview, up = preview_run(variant), up_run(variant)
    assert preview.preview and not up.preview
    assert sorted((r.type, r.name, r.urn) for r in preview.registrations) == \
        sorted((r.type, r.name, r.urn) for r in up.registrations)


def test_unknown_inputs_are_exactly_the_committed_list(variant: str) -> None:
    """Only Secret data and what is derived from certificates is unknown, at these paths."""
    assert _unknown(preview_run(variant)) == {k: sorted(v) for k, v in EXPECTED_UNKNOWN[variant].items()}
    assert _unknown(up_run(variant)) == {}, "a pulumi up run must have no unknown inputs"


def test_objects_the_pack_inspects_are_fully_known(variant: str) -> None:
    """StatefulSet, CronJob, RBAC, NetworkPolicies, Ingress/HTTPRoute/BackendTLSPolicy, Services,
    PDB, ServiceMonitor, ServiceAccounts: no unknown anywhere in them."""
    run = preview_run(variant)
    inspected = [r for r in run.kubernetes_objects() if r.plain_props.get("kind") in INSPECTED_KINDS]
    assert {r.plain_props["kind"] for r in inspected} >= EXPECTED_KINDS[variant]
    hanging = {object_key(r): r.unknown_paths for r in inspected if r.unknown_paths}
    assert hanging == {}, f"objects a mandatory rule inspects hang off an unknown: {hanging}"


def test_known_objects_are_what_pulumi_up_deploys(variant: str) -> None:
    """Every Kubernetes object without unknowns is, in preview, exactly the object ``pulumi up``
    creates: nothing is built differently (or from a placeholder) while outputs are unknown."""
    preview = {object_key(r): r.plain_props for r in preview_run(variant).kubernetes_objects() if not r.unknown_paths}
    up = {object_key(r): r.plain_props for r in up_run(variant).kubernetes_objects()}
    assert preview, "no known object at all"
    differs = sorted(k for k, props in preview.items() if up.get(k) != props)
    assert differs == [], f"differ between first preview and up: {differs}"


def test_statefulset_and_cronjob_mount_secrets_by_their_known_names(variant: str) -> None:
    """The pod specs take the Secret names from the Secret resources' outputs (metadata.name),
    which pulumi-kubernetes echoes in preview: the names are known and right."""
    run = preview_run(variant)
    secrets = {r.plain_props["metadata"]["name"] for r in run.kubernetes_objects() if r.plain_props["kind"] == "Secret"}

    def secret_volumes(pod_spec: dict[str, Any]) -> set[str]:
        return {v["secret"]["secretName"] for v in pod_spec["volumes"] if "secret" in v}

    sts = run.object("StatefulSet", "openbao")["spec"]["template"]["spec"]
    job = run.object("CronJob", "openbao-backup")["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert secret_volumes(sts) == {"openbao-tls", "openbao-unseal", "openbao-init"}
    assert secret_volumes(job) == {"openbao-ca"}
    assert secret_volumes(sts) | secret_volumes(job) <= secrets
