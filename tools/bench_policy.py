"""Benchmark the policy pack on the rendered stack, over the Analyzer protocol.

    python tools/bench_policy.py [--stack prod] [--runs 5]

Starts the pack as the engine does (``python policies/__main__.py``), renders the stack
with ``tools.render``, applies ``policies/policy-config.<stack>.json``, and prints the
median wall time of: AnalyzeStack over all resources, one Analyze pass over every
resource, and the two together (what a preview costs the pack). Reuses the policy tests'
harness, so what is timed is what is tested.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.policy.policy_harness import PACK_DIR, PolicyAnalyzer, render_stack  # noqa: E402


def _median_ms(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(runs):
        start = time.perf_counter()
        result = fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="prod")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        resources = render_stack(args.stack, Path(out))
    render_s = time.perf_counter() - start

    start = time.perf_counter()
    analyzer = PolicyAnalyzer()
    startup_s = time.perf_counter() - start
    try:
        analyzer.configure_from_file(PACK_DIR / f"policy-config.{args.stack}.json")
        stack_ms, diagnostics = _median_ms(lambda: analyzer.analyze_stack(resources, args.stack), args.runs)
        each_ms, _ = _median_ms(lambda: [analyzer.analyze(r, args.stack) for r in resources], args.runs)
        full_ms, full = _median_ms(lambda: analyzer.analyze_all(resources, args.stack), args.runs)
    finally:
        analyzer.close()

    kinds = len({r["type"] for r in resources})
    print(f"stack {args.stack}: {len(resources)} resources ({kinds} types), {len(analyzer.info.policies)} policies, "
          f"median of {args.runs}")
    print(f"  render (tools.render)              {render_s * 1000:8.1f} ms")
    print(f"  analyzer start (process + info)    {startup_s * 1000:8.1f} ms")
    print(f"  AnalyzeStack, all resources        {stack_ms:8.1f} ms")
    print(f"  Analyze, every resource            {each_ms:8.1f} ms  ({each_ms / max(len(resources), 1):.2f} ms each)")
    print(f"  preview (Analyze each + stack)     {full_ms:8.1f} ms")
    mandatory = [d for d in full if d.level == "mandatory"]
    print(f"  diagnostics: {len(full)} ({len(mandatory)} mandatory; {len(diagnostics)} from stack rules)")
    for d in mandatory:
        print(f"    {d.policy}: {d.message.splitlines()[-1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
