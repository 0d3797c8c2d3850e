"""Run components on their own, in a program of the test's making, the way another team would.

The reusable components take narrow args and never read the stack settings; these tests
prove it by building them under ``set_mocks`` with nothing but their args.
"""

from __future__ import annotations

from typing import Any, Callable

import pulumi
from pulumi.runtime import mocks as pulumi_mocks

from tests.support.program import ProgramRun, RecordingMocks, RecordingMonitor


def run_components(build: Callable[[], Any], stack: str = "test", project: str = "consumer") -> ProgramRun:
    """Run ``build()`` as a whole Pulumi program under mocks; every Output it returns is awaited."""
    mocks = RecordingMocks()
    pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=RecordingMonitor(mocks))

    @pulumi_mocks.test
    def run() -> pulumi.Output[Any]:
        built = build()
        outputs = [v for v in vars(built).values() if isinstance(v, pulumi.Output)] if built is not None else []
        return pulumi.Output.all(*outputs)

    run()
    return ProgramRun(stack=stack, registrations=mocks.registrations)
