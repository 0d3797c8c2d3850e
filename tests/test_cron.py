"""openbao_platform.cron: which schedules the settings accept, and the longest gap between
two runs that the freshness alerts and the renewal workflow's margin are derived from."""

from __future__ import annotations

import pytest

from openbao_platform.cron import is_five_field_cron, longest_interval

DAY = 86400


@pytest.mark.parametrize("exprs,seconds", [
    (["23 4 * * *"], DAY),
    (["*/15 * * * *"], 900),
    (["0 3 * * 1"], 7 * DAY),
    (["0 0 1 * *"], 31 * DAY),
    (["0 0 1,15 * *"], 17 * DAY),  # the 15th to the 1st of a 31-day month
    (["0 6 * * 1-5"], 3 * DAY),    # Friday to Monday
    (["0 0 * * 1", "0 0 * * 4"], 4 * DAY),  # two entries merged
    (["0 0 * * 0,7"], 7 * DAY),    # 0 and 7 are both Sunday
    (["30 */6 * * *"], 6 * 3600),
    (["0 0 29 2 *"], (3 * 365 + 366) * DAY),  # leap days only: the walk covers four years
])
def test_longest_interval(exprs: list[str], seconds: int) -> None:
    assert longest_interval(*exprs) == seconds


@pytest.mark.parametrize("expr,ok", [
    ("0 */6 * * *", True), ("*/30 * * * *", True), ("0 0 29 2 *", True),
    ("0 0 * * MON", False),   # names: not accepted here
    ("@daily", False),        # macros: not accepted here
    ("61 * * * *", False),    # out of range
    ("0 0 30 2 *", False),    # never fires
    ("0 0 * *", False),       # four fields
])
def test_is_five_field_cron(expr: str, ok: bool) -> None:
    assert is_five_field_cron(expr) is ok
