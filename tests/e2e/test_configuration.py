"""Configuration as code against real OpenBao: the real openbao_platform/scripts/reconcile.sh,
with the Job's environment (openbao_platform.configuration.reconcile_environment, paths re-rooted,
the active Service pinned to the leader's loopback address) and the ConfigMap's files
(openbao_platform.declared.desired_state of parsed stack settings), logs in under its own
kubernetes auth role `reconciler` (self-init created it; TokenReview answered by the fake
Kubernetes API) and reconciles tenants' policies and roles. Tenants' ServiceAccounts then log
in the same way and are held to their own paths."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from openbao_platform.configuration import TOKEN_SECONDS, configuration_spec, reconcile_environment
from openbao_platform.declared import desired_state
from openbao_platform.platform import configuration_args
from openbao_platform.scripts import script
from openbao_platform.server_config import reconciler_service_account
from openbao_platform.settings import parse_settings
from tests.e2e.harness import (FAKE_KUBE_NEEDS, KUBE_API_PORT, BaoCluster, BaoNode, bao_binary, map_url, reroot,
                               rewrite_hosts)
from tests.support.program import stack_config

IP_BASE = "127.0.20.11"  # this file's loopback range: files run in parallel
KUBERNETES_HOST = "https://kubernetes.default.svc"
#: Where the reconcile timings go (the report quotes them).
TIMINGS = Path(os.environ.get("E2E_RECONCILE_TIMINGS", "/tmp/openbao-reconcile-timings.json"))


def _settings(**overrides):
    stack = os.environ.get("E2E_STACK", "dev")
    return parse_settings({**stack_config(stack), **overrides}, stack)


def _tenants(*names: str, **extra) -> dict:
    return {n: {"serviceAccounts": ["app"], **extra.get(n, {})} for n in names}


class ReconcileJob:
    """The Job's pod, on the loopback: its volumes re-rooted under ``root``."""

    def __init__(self, root: Path) -> None:
        self.fs = root / "fs"
        settings = _settings()
        spec = configuration_spec(configuration_args(settings, ca_secret_name=settings.ca_bundle_name))
        self.env = {k: reroot(v, self.fs) for k, v in reconcile_environment(spec).items()}
        self.active = settings.active_dns_name
        self.desired = Path(self.env["RECONCILE_DIR"])
        self.jwt_file = Path(self.env["RECONCILE_JWT_FILE"])
        self.script = self.fs / "scripts" / "reconcile.sh"
        self.service_account = reconciler_service_account(settings)
        for d in (self.desired, self.jwt_file.parent, Path(self.env["BAO_CACERT"]).parent, Path(self.env["HOME"]),
                  self.script.parent):
            d.mkdir(parents=True, exist_ok=True)
        self.script.write_text(script("reconcile.sh"))  # what the script ConfigMap mounts

    def declare(self, **overrides) -> dict[str, str]:
        """What the desired-state ConfigMap holds for these stack settings (validated first)."""
        files = desired_state(_settings(**overrides).configuration)
        self.write(files)
        return files

    def write(self, files: dict[str, str]) -> None:
        shutil.rmtree(self.desired)
        self.desired.mkdir()
        for name, text in files.items():
            (self.desired / name).write_text(text)

    def run(self, cluster: BaoCluster) -> subprocess.CompletedProcess:
        """One Job run: a fresh projected token, the active Service = the current leader."""
        leader = cluster.wait_leader()
        self.jwt_file.write_text(cluster.kube_api.issue_token(self.service_account, ttl=TOKEN_SECONDS))
        Path(self.env["BAO_CACERT"]).write_bytes(Path(cluster.ca_file).read_bytes())
        env = dict(self.env)
        env["BAO_ADDR"] = rewrite_hosts(env["BAO_ADDR"], {self.active: leader.ip})
        env["BAO_TLS_SERVER_NAME"] = self.active
        env["PATH"] = f"{Path(bao_binary()).parent}:/usr/bin:/bin"
        return subprocess.run(["/bin/sh", str(self.script)], env=env, capture_output=True, text=True, timeout=300)


def _ok(done: subprocess.CompletedProcess) -> list[str]:
    assert done.returncode == 0, f"reconcile failed:\n{done.stdout}\n{done.stderr}"
    return [line for line in done.stdout.splitlines() if line.startswith("openbao-reconcile: ")]


def _outcomes(lines: list[str]) -> dict[str, str]:
    """``{"policy tenant-a": "created", ...}`` from the script's log."""
    out = {}
    for line in lines:
        body = line.split(": ", 1)[1]
        if body.startswith(("mount ", "policy ", "role ")) and ": " in body:
            obj, verb = body.rsplit(": ", 1)
            out[obj] = verb
    return out


def _login(cluster: BaoCluster, role: str, service_account: str, namespace: str) -> str:
    jwt = cluster.kube_api.issue_token(service_account, namespace=namespace)
    resp = cluster.wait_leader().request("POST", "auth/kubernetes/login", {"role": role, "jwt": jwt})
    assert resp.status == 200, (role, service_account, namespace, resp.status, resp.body)
    return resp.body["auth"]["client_token"]


def _snapshot(node: BaoNode, token: str) -> dict:
    """Every ACL policy's text and every kubernetes auth role's settings."""
    names = node.request("GET", "sys/policies/acl?list=true", token=token).body["data"]["keys"]
    policies = {n: node.request("GET", f"sys/policies/acl/{n}", token=token).body["data"]["policy"] for n in names}
    resp = node.request("GET", "auth/kubernetes/role?list=true", token=token)
    roles = {n: node.request("GET", f"auth/kubernetes/role/{n}", token=token).body["data"]
             for n in (resp.body["data"]["keys"] if resp.status == 200 else [])}
    return {"policies": policies, "roles": roles}


def _kv(node: BaoNode, token: str, method: str, path: str, body=None) -> int:
    return node.request(method, path, {"data": body} if body is not None else None, token=token).status


def _serving(make_cluster, ip_base: str) -> tuple[BaoCluster, str, BaoNode]:
    """A healthy cluster whose kubernetes auth reaches the fake Kubernetes API: (cluster, admin token, leader)."""
    cluster = make_cluster(ip_base=ip_base)
    assert cluster.kube_api is not None, FAKE_KUBE_NEEDS
    map_url(cluster, KUBERNETES_HOST, f"https://{cluster.kube_api_ip}:{KUBE_API_PORT}")
    admin = cluster.start_healthy()
    return cluster, admin, cluster.wait_leader()


def test_reconcile_tenants_against_real_openbao(make_cluster, tmp_path):
    cluster, admin, leader = _serving(make_cluster, IP_BASE)
    job = ReconcileJob(tmp_path)
    timings: dict[str, float] = {}

    # Objects the reconciler does not manage: the bootstrap configuration and a hand-made policy.
    hand = 'path "secret/data/handmade/*" { capabilities = ["read"] }\n'
    assert leader.request("PUT", "sys/policies/acl/handmade", {"policy": hand}, token=admin).status == 204
    before = _snapshot(leader, admin)
    assert {"admin", "backup", "reconciler", "handmade"} <= set(before["policies"])
    assert {"admin", "backup", "reconciler"} <= set(before["roles"])

    # 1. two tenants (team-b also binds an extra policy): everything created
    v1 = {"tenants": _tenants("team-a", "team-b", **{"team-b": {"policies": ["ci"]}}),
          "policies": {"ci": {"secret/data/shared/*": ["read", "list"]}}}
    job.declare(**v1)
    start = time.monotonic()
    lines = _ok(job.run(cluster))
    timings["2 tenants, first apply"] = time.monotonic() - start
    assert _outcomes(lines) == {"policy shared-ci": "created", "policy tenant-team-a": "created",
                                "policy tenant-team-b": "created", "role tenant-team-a": "created",
                                "role tenant-team-b": "created"}, lines
    assert lines[-1].endswith("done: 5 created, 0 updated, 0 deleted, 0 unchanged, 0 retained")

    # each tenant logs in and reaches only its own subtree (and team-b the shared path)
    ta = _login(cluster, "tenant-team-a", "app", "team-a")
    tb = _login(cluster, "tenant-team-b", "app", "team-b")
    assert _kv(leader, ta, "POST", "secret/data/tenants/team-a/db", {"password": "a"}) == 200
    assert _kv(leader, ta, "GET", "secret/data/tenants/team-a/db") == 200
    assert _kv(leader, tb, "POST", "secret/data/tenants/team-b/db", {"password": "b"}) == 200
    assert _kv(leader, ta, "GET", "secret/data/tenants/team-b/db") == 403
    assert _kv(leader, ta, "POST", "secret/data/tenants/team-b/db", {"password": "x"}) == 403
    assert _kv(leader, tb, "GET", "secret/data/tenants/team-a/db") == 403
    assert _kv(leader, ta, "GET", "secret/data/shared/config") == 403
    assert _kv(leader, tb, "GET", "secret/data/shared/config") in (200, 404)  # allowed; nothing there yet
    for token in (ta, tb):
        assert leader.request("GET", "sys/policies/acl?list=true", token=token).status == 403
        assert leader.request("GET", "sys/storage/raft/configuration", token=token).status == 403
    # the role binds the declared ServiceAccount and namespace only
    wrong = cluster.kube_api.issue_token("app", namespace="team-b")
    assert leader.request("POST", "auth/kubernetes/login", {"role": "tenant-team-a", "jwt": wrong}).status in (400, 403)
    wrong_sa = cluster.kube_api.issue_token("other", namespace="team-a")
    assert leader.request("POST", "auth/kubernetes/login", {"role": "tenant-team-a", "jwt": wrong_sa}).status in (400, 403)

    # the reconciler's own token cannot reach beyond what it manages
    rt = _login(cluster, "reconciler", job.service_account, cluster.kube_api.namespace)
    assert leader.request("PUT", "sys/policies/acl/admin", {"policy": hand}, token=rt).status == 403
    assert leader.request("GET", "sys/policies/acl/admin", token=rt).status == 403
    assert leader.request("PUT", "auth/kubernetes/role/admin", {"token_policies": ["admin"]}, token=rt).status == 403
    assert _kv(leader, rt, "GET", "secret/data/tenants/team-a/db") == 403
    assert leader.request("POST", "sys/mounts/evil", {"type": "kv"}, token=rt).status == 403

    # 2. idempotence: a second run with no change touches nothing
    lines = _ok(job.run(cluster))
    assert set(_outcomes(lines).values()) == {"unchanged"} and len(_outcomes(lines)) == 5, lines
    assert lines[-1].endswith("done: 0 created, 0 updated, 0 deleted, 5 unchanged, 0 retained")

    # 3. drift: a managed policy edited by hand is restored, and the run says so
    widened = 'path "sys/*" { capabilities = ["read", "list"] }\n'
    assert leader.request("PUT", "sys/policies/acl/tenant-team-a", {"policy": widened}, token=admin).status == 204
    assert leader.request("POST", "auth/kubernetes/role/tenant-team-b", {"token_ttl": 7200},
                          token=admin).status in (200, 204)
    lines = _ok(job.run(cluster))
    assert _outcomes(lines)["policy tenant-team-a"] == "updated", lines
    assert _outcomes(lines)["role tenant-team-b"] == "updated", lines
    state = _snapshot(leader, admin)
    assert state["policies"]["tenant-team-a"] == (job.desired / "policy.tenant-team-a.hcl").read_text()
    assert state["roles"]["tenant-team-b"]["token_ttl"] == 3600

    # 4. change: add team-c, narrow team-b to read only, remove team-a (and the extra policy)
    v2 = {"tenants": _tenants("team-b", "team-c", **{"team-b": {"write": []}})}
    files = job.declare(**v2)
    lines = _ok(job.run(cluster))
    assert _outcomes(lines) == {"policy tenant-team-b": "updated", "policy tenant-team-c": "created",
                                "role tenant-team-b": "updated", "role tenant-team-c": "created",
                                "role tenant-team-a": "deleted", "policy tenant-team-a": "deleted",
                                "policy shared-ci": "deleted"}, lines
    after = _snapshot(leader, admin)
    managed = {k for k in after["policies"] if k.startswith(("tenant-", "shared-"))}
    assert managed == {"tenant-team-b", "tenant-team-c"}
    assert {k for k in after["roles"] if k.startswith("tenant-")} == {"tenant-team-b", "tenant-team-c"}
    for name in managed:
        assert after["policies"][name] == files[f"policy.{name}.hcl"]
    for name in ("admin", "backup", "reconciler", "handmade"):  # never touched
        assert after["policies"][name] == before["policies"][name], name
    for name in ("admin", "backup", "reconciler"):
        assert after["roles"][name] == before["roles"][name], name
    assert leader.request("POST", "auth/kubernetes/login",
                          {"role": "tenant-team-a", "jwt": cluster.kube_api.issue_token("app", namespace="team-a")}
                          ).status in (400, 403)
    tb = _login(cluster, "tenant-team-b", "app", "team-b")
    assert _kv(leader, tb, "GET", "secret/data/tenants/team-b/db") == 200
    assert _kv(leader, tb, "POST", "secret/data/tenants/team-b/db", {"password": "c"}) == 403  # narrowed
    tc = _login(cluster, "tenant-team-c", "app", "team-c")
    assert _kv(leader, tc, "POST", "secret/data/tenants/team-c/x", {"k": "v"}) == 200

    # 5. bad configurations caught only in the cluster fail the run and change nothing
    #    a) a declared policy that exists but was made by hand: never taken over
    taken = 'path "secret/data/team-d/*" { capabilities = ["read"] }\n'
    assert leader.request("PUT", "sys/policies/acl/tenant-team-d", {"policy": taken}, token=admin).status == 204
    running = _snapshot(leader, admin)
    job.declare(tenants=_tenants("team-b", "team-c", "team-d", **{"team-b": {"write": []}}))
    done = job.run(cluster)
    assert done.returncode != 0
    assert "policy tenant-team-d exists but was not created by the reconciler" in done.stderr, done.stderr
    assert "nothing was changed" in done.stderr
    assert _snapshot(leader, admin) == running
    #    b) a ConfigMap edited past review (an unknown capability, a role bound to a missing policy)
    bad = dict(files)
    bad["policy.tenant-team-c.hcl"] = files["policy.tenant-team-c.hcl"].replace('"list"', '"list", "bogus"')
    bad["role.tenant-team-b"] = files["role.tenant-team-b"].replace("token_policies=tenant-team-b",
                                                                    "token_policies=tenant-team-b,shared-missing")
    job.write(bad)
    done = job.run(cluster)
    assert done.returncode != 0
    assert 'invalid capability "bogus"' in done.stderr and "policy shared-missing is not in the desired state" in done.stderr
    assert _snapshot(leader, admin) == running
    assert leader.request("DELETE", "sys/policies/acl/tenant-team-d", token=admin).status == 204

    # 6. wall time for 20 tenants: first apply, then a run with nothing to do
    job.declare(tenants=_tenants(*(f"team-{i:02d}" for i in range(20))))
    start = time.monotonic()
    lines = _ok(job.run(cluster))
    timings["20 tenants, first apply (and 4 deletions)"] = time.monotonic() - start
    assert list(_outcomes(lines).values()).count("created") == 40
    start = time.monotonic()
    lines = _ok(job.run(cluster))
    timings["20 tenants, no change"] = time.monotonic() - start
    assert lines[-1].endswith("done: 0 created, 0 updated, 0 deleted, 40 unchanged, 0 retained")
    job.declare(**v1)
    _ok(job.run(cluster))  # back to the two tenants (40 objects deleted)
    start = time.monotonic()
    lines = _ok(job.run(cluster))
    timings["2 tenants, no change"] = time.monotonic() - start
    assert lines[-1].endswith("done: 0 created, 0 updated, 0 deleted, 5 unchanged, 0 retained")
    TIMINGS.write_text(json.dumps({k: round(v, 2) for k, v in timings.items()}, indent=2) + "\n")
    print("reconcile wall time (s):", json.dumps({k: round(v, 2) for k, v in timings.items()}))

