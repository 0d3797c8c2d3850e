"""The NetworkPolicy evaluator implements Kubernetes semantics, tricky corners included."""

from __future__ import annotations

from typing import Any, Optional

import pytest

from openbao_platform.netpol_eval import Cluster, External, Pod, policy_types, selector_matches

NAMESPACES = {"app": {"team": "a"}, "other": {"team": "b"}, "mon": {}}
WEB = Pod("app", {"role": "web"}, ip="10.1.0.1")
DB = Pod("app", {"role": "db"}, ip="10.1.0.2", named_ports={"pg": (5432, "TCP")})
STRANGER = Pod("other", {"role": "web"}, ip="10.2.0.1")
PROM = Pod("mon", {"app": "prometheus"}, ip="10.3.0.1")
INTERNET = External("8.8.8.8")


def policy(spec: dict[str, Any], namespace: str = "app", name: str = "p") -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": namespace}, "spec": spec}


def db_ingress(rules: Optional[list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"podSelector": {"matchLabels": {"role": "db"}}, **extra}
    if rules is not None:
        spec["ingress"] = rules
    return policy(spec)


def cluster(*policies: dict[str, Any]) -> Cluster:
    return Cluster(NAMESPACES, policies)


# --- isolation and policyTypes --------------------------------------------------------

def test_no_policy_means_everything_is_allowed() -> None:
    c = cluster()
    assert c.allowed(WEB, DB, 5432) and c.allowed(DB, INTERNET, 443) and c.allowed(INTERNET, DB, 1, "UDP")


def test_a_selected_pod_with_no_rules_is_isolated_for_ingress_only() -> None:
    c = cluster(db_ingress(None, policyTypes=["Ingress"]))
    assert not c.allowed(WEB, DB, 5432)
    assert c.allowed(DB, INTERNET, 443), "egress is not isolated by an Ingress-only policy"
    assert c.allowed(DB, WEB, 80) and c.allowed(WEB, STRANGER, 80), "unselected pods stay open"


def test_policy_types_absent_means_ingress_only_when_there_is_no_egress_rule() -> None:
    p = db_ingress([{"from": [{"podSelector": {}}]}])
    assert policy_types(p) == {"Ingress"}
    assert cluster(p).allowed(DB, INTERNET, 443)


def test_policy_types_absent_with_egress_rules_isolates_both_directions() -> None:
    p = policy({"podSelector": {"matchLabels": {"role": "db"}}, "egress": [{"to": [{"podSelector": {}}]}]})
    assert policy_types(p) == {"Ingress", "Egress"}
    c = cluster(p)
    assert not c.allowed(WEB, DB, 5432), "ingress isolated, and no ingress rule"
    assert c.allowed(DB, WEB, 80) and not c.allowed(DB, INTERNET, 443)


def test_policy_types_absent_with_empty_egress_list_does_not_isolate_egress() -> None:
    # The API server's defaulting adds Egress only for a non-empty egress list.
    p = policy({"podSelector": {"matchLabels": {"role": "db"}}, "egress": []})
    assert policy_types(p) == {"Ingress"}
    assert cluster(p).allowed(DB, INTERNET, 443)


def test_explicit_egress_type_with_empty_egress_list_denies_egress() -> None:
    p = policy({"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Egress"], "egress": []})
    c = cluster(p)
    assert not c.allowed(DB, INTERNET, 443) and not c.allowed(DB, WEB, 80)
    assert c.allowed(WEB, DB, 5432), "ingress rules are ignored: Ingress is not in policyTypes"


def test_ingress_rules_do_not_count_when_policy_types_is_egress_only() -> None:
    p = db_ingress([], policyTypes=["Egress"])  # ingress: [] would deny, if it applied
    assert cluster(p).ingress_allowed(WEB, DB, 5432)


def test_policies_only_apply_in_their_own_namespace() -> None:
    c = cluster(policy({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}, namespace="other"))
    assert c.allowed(WEB, DB, 5432) and not c.allowed(WEB, STRANGER, 80)


def test_policies_are_additive() -> None:
    a = db_ingress([{"from": [{"podSelector": {"matchLabels": {"role": "web"}}}]}])
    b = db_ingress([{"from": [{"namespaceSelector": {"matchLabels": {"team": "b"}}}]}])
    c = cluster(a, b)
    assert c.allowed(WEB, DB, 5432) and c.allowed(STRANGER, DB, 5432) and not c.allowed(PROM, DB, 5432)


# --- peers ----------------------------------------------------------------------------

def test_missing_from_and_empty_from_both_match_every_source() -> None:
    for rule in ({"ports": [{"port": 5432}]}, {"from": [], "ports": [{"port": 5432}]}):
        c = cluster(db_ingress([rule]))
        assert c.allowed(WEB, DB, 5432) and c.allowed(STRANGER, DB, 5432) and c.allowed(INTERNET, DB, 5432)
        assert not c.allowed(WEB, DB, 80)


def test_empty_rule_list_denies_but_an_empty_rule_allows_everything() -> None:
    assert not cluster(db_ingress([])).allowed(WEB, DB, 5432)
    assert cluster(db_ingress([{}])).allowed(INTERNET, DB, 1, "UDP")


def test_pod_selector_alone_means_the_policy_namespace() -> None:
    c = cluster(db_ingress([{"from": [{"podSelector": {"matchLabels": {"role": "web"}}}]}]))
    assert c.allowed(WEB, DB, 5432)
    assert not c.allowed(STRANGER, DB, 5432), "same labels, other namespace"


def test_empty_namespace_selector_means_every_namespace_but_no_external_address() -> None:
    c = cluster(db_ingress([{"from": [{"namespaceSelector": {}}]}]))
    assert c.allowed(WEB, DB, 5432) and c.allowed(STRANGER, DB, 5432) and c.allowed(PROM, DB, 5432)
    assert not c.allowed(INTERNET, DB, 5432)


def test_namespace_and_pod_selector_in_one_peer_are_anded() -> None:
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}},
            "podSelector": {"matchLabels": {"app": "prometheus"}}}
    c = cluster(db_ingress([{"from": [peer]}]))
    assert c.allowed(PROM, DB, 5432)
    assert not c.allowed(Pod("mon", {"app": "grafana"}), DB, 5432), "right namespace, wrong pod"
    assert not c.allowed(Pod("other", {"app": "prometheus"}), DB, 5432), "right pod, wrong namespace"


def test_separate_peers_are_ored() -> None:
    peers = [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "mon"}}},
             {"podSelector": {"matchLabels": {"app": "prometheus"}}}]
    c = cluster(db_ingress([{"from": peers}]))
    assert c.allowed(Pod("mon", {"app": "grafana"}), DB, 5432), "any pod in mon"
    assert c.allowed(Pod("app", {"app": "prometheus"}), DB, 5432), "prometheus in the policy namespace"
    assert not c.allowed(Pod("other", {"app": "prometheus"}), DB, 5432)


def test_namespace_name_label_is_implicit() -> None:
    c = Cluster({"app": {}, "x": {}}, [db_ingress([{"from": [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "x"}}}]}])])
    assert c.allowed(Pod("x"), DB, 5432) and not c.allowed(WEB, DB, 5432)


def test_ip_block_with_except() -> None:
    egress = policy({"podSelector": {"matchLabels": {"role": "db"}}, "policyTypes": ["Egress"],
                     "egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.9.0.0/16"]}}]}]})
    c = cluster(egress)
    assert c.allowed(DB, External("10.1.2.3"), 443)
    assert not c.allowed(DB, External("10.9.1.1"), 443), "in the except range"
    assert not c.allowed(DB, External("192.168.0.1"), 443) and not c.allowed(DB, External("::1"), 443)
    assert c.allowed(DB, WEB, 80), "ipBlock matches pods by address too"
    assert not c.allowed(DB, Pod("app", {"role": "web"}), 80), "a pod without an address is not matched"


def test_ip_block_and_selector_in_one_peer_is_invalid() -> None:
    bad = db_ingress([{"from": [{"ipBlock": {"cidr": "0.0.0.0/0"}, "podSelector": {}}]}])
    with pytest.raises(ValueError):
        cluster(bad).allowed(WEB, DB, 5432)


# --- ports ----------------------------------------------------------------------------

def test_protocol_defaults_to_tcp() -> None:
    c = cluster(db_ingress([{"ports": [{"port": 53}]}]))
    assert c.allowed(WEB, DB, 53) and not c.allowed(WEB, DB, 53, "UDP")


def test_port_without_number_means_every_port_of_that_protocol() -> None:
    c = cluster(db_ingress([{"ports": [{"protocol": "UDP"}]}]))
    assert c.allowed(WEB, DB, 1, "UDP") and c.allowed(WEB, DB, 65535, "UDP") and not c.allowed(WEB, DB, 1)


def test_end_port_is_an_inclusive_range() -> None:
    c = cluster(db_ingress([{"ports": [{"port": 8200, "endPort": 8201}]}]))
    assert c.allowed(WEB, DB, 8200) and c.allowed(WEB, DB, 8201)
    assert not c.allowed(WEB, DB, 8199) and not c.allowed(WEB, DB, 8202)


def test_named_ports_resolve_on_the_destination_pod() -> None:
    c = cluster(db_ingress([{"ports": [{"port": "pg"}]}]))
    assert c.allowed(WEB, DB, 5432) and not c.allowed(WEB, DB, 5433)


# --- both ends ------------------------------------------------------------------------

def test_a_flow_needs_egress_at_the_source_and_ingress_at_the_destination() -> None:
    web_egress = policy({"podSelector": {"matchLabels": {"role": "web"}}, "policyTypes": ["Egress"],
                         "egress": [{"to": [{"podSelector": {"matchLabels": {"role": "db"}}}]}]}, name="web")
    db_closed = db_ingress([], policyTypes=["Ingress"])
    assert cluster(web_egress).allowed(WEB, DB, 5432)
    assert not cluster(web_egress, db_closed).allowed(WEB, DB, 5432), "egress ok, ingress denied"
    assert cluster(web_egress).egress_allowed(WEB, DB, 5432)
    assert not cluster(web_egress).allowed(WEB, STRANGER, 80), "ingress open, egress denied"


# --- selectors ------------------------------------------------------------------------

@pytest.mark.parametrize("expr, labels, expected", [
    ({"key": "tier", "operator": "In", "values": ["a", "b"]}, {"tier": "a"}, True),
    ({"key": "tier", "operator": "In", "values": ["a"]}, {}, False),
    ({"key": "tier", "operator": "NotIn", "values": ["a"]}, {"tier": "b"}, True),
    ({"key": "tier", "operator": "NotIn", "values": ["a"]}, {}, True),
    ({"key": "tier", "operator": "NotIn", "values": ["a"]}, {"tier": "a"}, False),
    ({"key": "tier", "operator": "Exists"}, {"tier": ""}, True),
    ({"key": "tier", "operator": "Exists"}, {}, False),
    ({"key": "tier", "operator": "DoesNotExist"}, {}, True),
    ({"key": "tier", "operator": "DoesNotExist"}, {"tier": "a"}, False),
])
def test_match_expressions(expr: dict[str, Any], labels: dict[str, str], expected: bool) -> None:
    assert selector_matches({"matchExpressions": [expr]}, labels) is expected


def test_match_labels_and_expressions_are_anded_and_empty_matches_all() -> None:
    sel = {"matchLabels": {"a": "1"}, "matchExpressions": [{"key": "b", "operator": "Exists"}]}
    assert selector_matches(sel, {"a": "1", "b": "x"}) and not selector_matches(sel, {"a": "1"})
    assert selector_matches({}, {}) and selector_matches({}, {"any": "thing"})


def test_non_network_policy_objects_are_refused() -> None:
    with pytest.raises(ValueError):
        Cluster(NAMESPACES, [{"kind": "Ingress", "metadata": {"namespace": "app"}}])
