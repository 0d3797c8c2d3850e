"""secretEngines against real OpenBao: the real reconcile.sh, run as the Job runs it
(tests/e2e/test_configuration.py's ReconcileJob), creates and tunes mounts under apps/, never
disables one, and refuses a hand-made or re-typed mount before any write. Its own file so the
suite's workers run it beside the tenants scenario."""

from __future__ import annotations

import json

from tests.e2e.harness import BaoNode
from tests.e2e.test_configuration import ReconcileJob, _kv, _login, _ok, _outcomes, _serving

IP_BASE = "127.0.24.11"  # this file's loopback range: files run in parallel


def _mount(node: BaoNode, token: str, path: str) -> dict:
    resp = node.request("GET", f"sys/mounts/{path}", token=token)
    return resp.body["data"] if resp.status == 200 else {}


def test_reconcile_secret_engines_against_real_openbao(make_cluster, tmp_path):
    """secretEngines: created and tuned under apps/, never disabled; a hand-made or re-typed mount
    refused before any write; and a cluster with no reconciler role runs an empty state cleanly."""
    cluster, admin, leader = _serving(make_cluster, IP_BASE)
    job = ReconcileJob(tmp_path)

    # 1. three engines and a tenant that writes to the KV one and encrypts with the transit one
    engines = {"payments-kv": {"type": "kv-v2", "description": "payments team", "maxVersions": 5, "casRequired": False},
               "orders-transit": {"type": "transit"},
               "web-pki": {"type": "pki", "maxLeaseTtl": "720h"}}
    tenant = {"payments": {"serviceAccounts": ["app"],
                           "read": ["apps/payments-kv/data/*", "apps/payments-kv/metadata/*"],
                           "write": ["apps/payments-kv/data/*", "apps/orders-transit/encrypt/orders",
                                     "apps/orders-transit/keys/orders"]}}
    job.declare(secretEngines=engines, tenants=tenant)
    lines = _ok(job.run(cluster))
    assert _outcomes(lines) == {"mount apps/orders-transit": "created", "mount apps/payments-kv": "created",
                                "mount apps/web-pki": "created", "policy tenant-payments": "created",
                                "role tenant-payments": "created"}, lines
    kv = _mount(leader, admin, "apps/payments-kv")
    assert (kv["type"], kv["options"], kv["description"]) == ("kv", {"version": "2"}, "payments team")
    assert leader.request("GET", "apps/payments-kv/config", token=admin).body["data"]["max_versions"] == 5
    assert _mount(leader, admin, "apps/web-pki")["config"]["max_lease_ttl"] == 720 * 3600
    assert _mount(leader, admin, "apps/orders-transit")["type"] == "transit"
    tp = _login(cluster, "tenant-payments", "app", "payments")
    assert _kv(leader, tp, "POST", "apps/payments-kv/data/db", {"password": "p"}) == 200
    assert leader.request("POST", "apps/orders-transit/keys/orders", {}, token=tp).status in (200, 204)
    enc = leader.request("POST", "apps/orders-transit/encrypt/orders", {"plaintext": "aGk="}, token=tp)
    assert enc.status == 200 and enc.body["data"]["ciphertext"].startswith("vault:v1:"), enc.body
    assert leader.request("GET", "apps/web-pki/roles?list=true", token=tp).status == 403  # not granted
    lines = _ok(job.run(cluster))
    assert lines[-1].endswith("done: 0 created, 0 updated, 0 deleted, 5 unchanged, 0 retained"), lines

    # the reconciler may create and tune under apps/ only, and can never disable a mount
    rt = _login(cluster, "reconciler", job.service_account, cluster.kube_api.namespace)
    assert leader.request("DELETE", "sys/mounts/apps/payments-kv", token=rt).status == 403
    assert leader.request("POST", "sys/mounts/secret/tune", {"max_lease_ttl": "1h"}, token=rt).status == 403
    assert leader.request("POST", "sys/mounts/elsewhere", {"type": "kv"}, token=rt).status == 403
    assert _kv(leader, rt, "GET", "apps/payments-kv/data/db") == 403

    # 2. drift on a tuning value and on the KV config: restored and logged
    assert leader.request("POST", "sys/mounts/apps/web-pki/tune", {"max_lease_ttl": "24h"}, token=admin).status == 204
    assert leader.request("POST", "apps/payments-kv/config", {"max_versions": 50}, token=admin).status == 204
    lines = _ok(job.run(cluster))
    outcomes = _outcomes(lines)
    assert outcomes["mount apps/web-pki"] == "updated (max_lease_ttl)", lines
    assert outcomes["mount apps/payments-kv"] == "updated (max_versions)", lines
    assert _mount(leader, admin, "apps/web-pki")["config"]["max_lease_ttl"] == 720 * 3600
    assert leader.request("GET", "apps/payments-kv/config", token=admin).body["data"]["max_versions"] == 5

    # 3. an engine no longer declared is retained with its data, and re-declaring adopts it again
    job.declare(secretEngines={k: v for k, v in engines.items() if k != "payments-kv"})
    lines = _ok(job.run(cluster))
    assert _outcomes(lines)["mount apps/payments-kv"].startswith("retained"), lines
    assert lines[-1].endswith("1 retained"), lines
    assert _kv(leader, admin, "GET", "apps/payments-kv/data/db") == 200
    job.declare(secretEngines=engines, tenants=tenant)
    assert _outcomes(_ok(job.run(cluster)))["mount apps/payments-kv"] == "unchanged"

    # 4. refused before any write: a declared mount made by hand, and a type change
    assert leader.request("POST", "sys/mounts/apps/handmade", {"type": "kv", "options": {"version": "2"}},
                          token=admin).status == 204
    mounts_before = sorted(leader.request("GET", "sys/mounts", token=admin).body["data"])
    job.declare(secretEngines={**engines, "handmade": {"type": "kv-v2"}, "orders-transit": {"type": "kv-v2"},
                               "new-kv": {"type": "kv-v2"}}, tenants=tenant)
    done = job.run(cluster)
    assert done.returncode != 0
    assert "mount apps/handmade exists but was not created by the reconciler" in done.stderr, done.stderr
    assert "mount apps/orders-transit is transit, declared kv-v2" in done.stderr, done.stderr
    assert sorted(leader.request("GET", "sys/mounts", token=admin).body["data"]) == mounts_before  # new-kv not created

    # 5. a cluster initialised before secretEngines existed: its reconciler policy has no mount
    #    paths, so a declared mount fails on the first read, naming the one-time bootstrap
    current = leader.request("GET", "sys/policies/acl/reconciler", token=admin).body["data"]["policy"]
    old = json.loads(current)
    old["path"] = {p: v for p, v in old["path"].items() if not p.startswith(("sys/mounts/", "apps/"))}
    assert leader.request("PUT", "sys/policies/acl/reconciler", {"policy": json.dumps(old)}, token=admin).status == 204
    job.declare(secretEngines={"late-kv": {"type": "kv-v2"}})
    done = job.run(cluster)
    assert done.returncode != 0, done.stdout
    assert "reading mount apps/late-kv: permission denied (the reconciler's policy predates secretEngines" in done.stderr
    assert "docs/tenants.md, section 4" in done.stderr, done.stderr
    assert leader.request("PUT", "sys/policies/acl/reconciler", {"policy": current}, token=admin).status == 204

    # 6. a cluster initialised before the reconciler (no such role): an empty state is a clean no-op,
    #    a declared one fails naming the one-time bootstrap
    assert leader.request("DELETE", "auth/kubernetes/role/reconciler", token=admin).status == 204
    job.write({})
    lines = _ok(job.run(cluster))
    assert "nothing to apply" in lines[-2] and "docs/tenants.md, section 4" in lines[-2], lines
    job.declare(tenants=tenant)
    done = job.run(cluster)
    assert done.returncode != 0 and "docs/tenants.md, section 4" in done.stderr, done.stderr
