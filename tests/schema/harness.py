"""Run one component under the shared recording mocks and return what it registered."""

from __future__ import annotations

from typing import Any, Callable

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from openbao_platform.settings import PROJECT
from tests.support.program import Registration, RecordingMocks


def run_component(build: Callable[[], pulumi.ComponentResource],
                  outputs: Callable[[Any], pulumi.Output[Any]]) -> tuple[list[Registration], Any]:
    """Build a component under mocks; wait for ``outputs(component)`` and return it resolved."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack="unit", preview=False)
    resolved: list[Any] = []

    @pulumi_mocks.test
    def run() -> pulumi.Output[Any]:
        return outputs(build()).apply(lambda v: resolved.append(v))

    run()
    return mocks.registrations, resolved[0]
