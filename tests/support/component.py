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


def rejected_args(build: Callable[[], Any], monkeypatch: Any, problem: str) -> str:
    """Run ``build()``; it must raise ArgsError whose line starting ``problem`` has a fix, and no
    resource may have been constructed before. Returns the error text."""
    import pytest

    from openbao_platform.settings import ArgsError

    constructed: list[str] = []
    original = pulumi.Resource.__init__

    def spy(self: pulumi.Resource, t: str, name: str, *args: Any, **kwargs: Any) -> None:
        constructed.append(f"{t} {name}")
        original(self, t, name, *args, **kwargs)

    monkeypatch.setattr(pulumi.Resource, "__init__", spy)
    with pytest.raises(ArgsError) as err:
        run_components(build)
    text = str(err.value)
    assert problem in text, text
    line = next(p for p in err.value.problems if p.startswith(problem))
    assert "Fix: " in line and "nothing was created" in text
    assert constructed == [], "a resource was created before the args were validated"
    return text
