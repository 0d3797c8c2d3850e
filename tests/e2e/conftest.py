"""Fixtures for the e2e suite: real `bao server` processes on loopback from the rendered config.

    E2E_RENDER_DIR=DIR   use an existing render (DIR or DIR/openbao) instead of rendering
    E2E_STACK=dev|prod   which stack to render (default dev)
    E2E_KEEP_TMP=1       keep each cluster's temp dir (logs, data) after the test
    E2E_KUBE=fake|drop   service registration: fake Kubernetes API or drop the stanza (default auto)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.e2e.harness import BaoCluster, Rendered, render


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: runs real OpenBao server processes on loopback")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"e2e_rep_{rep.when}", rep)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """The OpenBao part of `python -m tools.render` (or of E2E_RENDER_DIR)."""
    given = os.environ.get("E2E_RENDER_DIR")
    if given:
        return Rendered.load(given)
    stack = os.environ.get("E2E_STACK", "dev")
    return render(stack, tmp_path_factory.mktemp(f"render-{stack}"))


@pytest.fixture
def make_cluster(request: pytest.FixtureRequest, rendered: Rendered) -> Iterator[Callable[..., BaoCluster]]:
    """Factory: ``make_cluster(replicas=3, mode="script", kube="auto")`` -> BaoCluster.

    Every cluster made is closed at teardown (processes stopped, temp dir removed); when the
    test failed, the tail of each node's log is printed first.
    """
    clusters: list[BaoCluster] = []

    def factory(**kwargs) -> BaoCluster:
        kwargs.setdefault("kube", os.environ.get("E2E_KUBE", "auto"))
        cluster = BaoCluster(rendered, **kwargs)
        clusters.append(cluster)
        return cluster

    yield factory

    failed = any(getattr(getattr(request.node, f"e2e_rep_{w}", None), "failed", False) for w in ("setup", "call"))
    errors = []
    for cluster in clusters:
        if failed:
            print(f"\n===== e2e node logs ({cluster.workdir}) =====\n{cluster.log_tails(60)}", file=sys.stderr)
        try:
            cluster.close()
        except Exception as exc:  # close all clusters even if one fails to stop cleanly
            errors.append(exc)
    if errors:
        raise errors[0]
