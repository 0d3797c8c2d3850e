"""Cron schedules: the one check every schedule setting uses (backup, restore drill,
configuration drift), and the longest wait between two runs, which the freshness alerts
derive their threshold from.

Parsing and evaluation are cronsim's (the evaluator healthchecks.io runs on): Debian cron
semantics, which is what the Kubernetes CronJob controller's standard parser follows too
(day-of-month and day-of-week both restricted: either matches).
"""

import heapq
import re
from datetime import datetime, timezone

from cronsim import CronSim, CronSimError

_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")
#: Where the longest-interval walk starts (any fixed instant: the result must not depend on today).
_EPOCH = datetime(2026, 1, 1, tzinfo=timezone.utc)
#: The walk covers a leap-year cycle, or this many runs, whichever ends first: enough to see
#: every gap of a five-field schedule (a run every minute repeats its pattern within a day;
#: ``0 0 29 2 *`` needs the four years).
_MAX_RUNS = 20_000
_MAX_DAYS = 4 * 366


def is_five_field_cron(expression: str) -> bool:
    """Five fields of digits, ``*``, ``/``, ``,`` and ``-`` that cronsim parses and that fire at
    least once: what a CronJob's schedule accepts here (no names, no macros)."""
    fields = expression.split()
    if len(fields) != 5 or not all(_CRON_FIELD.match(f) for f in fields):
        return False
    try:
        next(CronSim(expression, _EPOCH))
    except (CronSimError, StopIteration):
        return False
    return True


def longest_interval(*expressions: str) -> int:
    """Seconds of the longest gap between two consecutive runs (UTC) of the schedules merged
    (several entries of one workflow run as one schedule, as GitHub Actions does)."""
    runs = heapq.merge(*(CronSim(e, _EPOCH) for e in expressions))
    previous = next(runs)
    longest = 0
    for count, moment in enumerate(runs):
        longest = max(longest, int((moment - previous).total_seconds()))
        previous = moment
        if count >= _MAX_RUNS or (moment - _EPOCH).days > _MAX_DAYS:
            break
    return longest
