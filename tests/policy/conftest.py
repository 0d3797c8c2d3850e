"""Fixtures for the policy pack tests: one analyzer process per session, reconfigured per test."""

from __future__ import annotations

from typing import Iterator

import pytest

from tests.policy.policy_harness import PolicyAnalyzer

#: HA rules only apply to production stacks; the compliant baseline is a production stack.
HA_RULES = ("ha-raft-replicas", "ha-quorum-pdb", "ha-pod-anti-affinity", "ha-zone-spread", "ha-ondelete-updates")
PRODUCTION = {name: {"production": True} for name in HA_RULES}


@pytest.fixture(scope="session")
def analyzer() -> Iterator[PolicyAnalyzer]:
    """The policy pack, started once (python policies/__main__.py) and stopped at the end."""
    pack = PolicyAnalyzer()
    try:
        yield pack
    finally:
        pack.close()


@pytest.fixture
def policy(analyzer: PolicyAnalyzer) -> PolicyAnalyzer:
    """The analyzer with the production test config (every rule at its default level)."""
    analyzer.configure(PRODUCTION)
    return analyzer
