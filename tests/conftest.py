"""Shared fixtures: the program run once per stack under mocks (real SDK, crypto fakes)."""

from __future__ import annotations

import pytest

from tests.support.program import ProgramRun, run_program


@pytest.fixture(scope="session")
def prod_run() -> ProgramRun:
    return run_program("prod")


@pytest.fixture(scope="session")
def dev_run() -> ProgramRun:
    return run_program("dev")
