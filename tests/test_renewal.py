"""Clock-driven renewal: the trigger's periods, its guarantee, and that the program wires it.

The guarantee under test: if successful ``pulumi up`` runs are always less than
``margin_hours`` apart, a server certificate issued at *any* moment is replaced before its
early-renewal window opens. The clock is injected; nothing here reads the real time.
"""

from __future__ import annotations

import datetime as dt
import random

import pytest

from openbao_platform import renewal
from openbao_platform.settings import PkiSettings, parse_settings
from tests.support.program import run_program, stack_config

UTC = dt.timezone.utc
H = dt.timedelta(hours=1)
S = dt.timedelta(seconds=1)

#: Years away from the real clock, so a program that read the real time could not pass.
#: 22455 days after the epoch: 748 whole 30-day periods (22440 days) and 2245 10-day ones.
FIXED = dt.datetime(2031, 6, 25, 12, 0, tzinfo=UTC)

#: (validity, early renewal) of the defaults and of each committed stack file.
CASES = {
    "defaults": (PkiSettings().server_validity_hours, PkiSettings().early_renewal_hours),
    **{stack: (parse_settings(stack_config(stack), stack).pki.server_validity_hours,
               parse_settings(stack_config(stack), stack).pki.early_renewal_hours)
       for stack in ("prod", "dev")},
}


def test_stack_files_are_what_the_schedule_was_derived_from() -> None:
    # README "Continuous delivery" derives the schedule from these; a change here must revisit it
    # (tests/test_workflows.py checks the cron against the margins whatever they are).
    assert CASES == {"defaults": (2160, 720), "prod": (2160, 720), "dev": (720, 240)}


@pytest.mark.parametrize(("validity", "early", "period_h", "margin_h"), [
    (2160, 720, 720, 720),    # defaults and prod: re-issued every 30 days, runs < 30 days apart
    (720, 240, 240, 240),     # dev: every 10 days, runs < 10 days apart
    (25, 0, 12.5, 12.5),      # odd hours: half-hour periods are fine
    (2, 1, 0.5, 0.5),
])
def test_period_and_margin(validity: int, early: int, period_h: float, margin_h: float) -> None:
    assert renewal.period_seconds(validity, early) == period_h * 3600
    assert renewal.margin_hours(validity, early) == margin_h
    # Period plus margin is exactly the time before the window opens.
    assert renewal.period_seconds(validity, early) / 3600 + renewal.margin_hours(validity, early) == validity - early


@pytest.mark.parametrize(("validity", "early"), [(720, 720), (720, 721), (720, -1), (0, 0)])
def test_rejects_settings_with_no_time_outside_the_window(validity: int, early: int) -> None:
    with pytest.raises(ValueError):
        renewal.period_seconds(validity, early)


def test_periods_are_anchored_at_the_unix_epoch() -> None:
    epoch = renewal.ANCHOR
    assert renewal.renewal_epoch(2160, 720, epoch) == 0
    assert renewal.renewal_trigger(2160, 720, epoch) == "1970-01-01T00:00:00Z/PT720H"
    assert renewal.renewal_epoch(2160, 720, epoch + 30 * 24 * H) == 1
    assert renewal.renewal_epoch(2160, 720, epoch - S) == -1
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    # 20788 days after the epoch; 692 whole 30-day periods (20760 days) end on 2026-11-03.
    assert renewal.renewal_epoch(2160, 720, now) == 692
    assert renewal.renewal_trigger(2160, 720, now) == "2026-11-03T00:00:00Z/PT720H"
    assert renewal.renewal_trigger(720, 240, now) == "2026-11-23T00:00:00Z/PT240H"
    assert renewal.renewal_trigger(25, 0, epoch) == "1970-01-01T00:00:00Z/PT12H30M"


@pytest.mark.parametrize("case", sorted(CASES))
def test_trigger_is_stable_inside_a_period_and_changes_at_its_boundary(case: str) -> None:
    validity, early = CASES[case]
    period = dt.timedelta(seconds=renewal.period_seconds(validity, early))
    start = renewal.period_start(validity, early, dt.datetime(2026, 12, 1, tzinfo=UTC))
    inside = [start, start + S, start + period / 2, start + period - dt.timedelta(microseconds=1)]
    values = {renewal.renewal_trigger(validity, early, t) for t in inside}
    assert len(values) == 1
    assert renewal.renewal_trigger(validity, early, start + period) not in values
    assert renewal.renewal_trigger(validity, early, start - dt.timedelta(microseconds=1)) not in values
    # Other time zones name the same instant, hence the same period.
    cet = dt.timezone(dt.timedelta(hours=1))
    assert renewal.renewal_trigger(validity, early, (start + S).astimezone(cet)) in values


def test_trigger_defaults_to_the_injected_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(renewal, "clock", lambda: FIXED)
    assert renewal.renewal_trigger(2160, 720) == "2031-06-10T00:00:00Z/PT720H"


def test_naive_clock_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(renewal, "clock", lambda: dt.datetime(2026, 12, 1, 12, 0))
    with pytest.raises(ValueError, match="aware"):
        renewal.renewal_trigger(2160, 720)


def _schedule(phase: dt.datetime, gap: dt.timedelta, start: dt.datetime, end: dt.datetime) -> list[dt.datetime]:
    """Run times ``phase + n * gap`` between start and end."""
    first = phase + gap * ((start - phase) // gap)
    runs, t = [], first
    while t <= end:
        runs.append(t)
        t += gap
    return runs


def _worst_lateness(validity: int, early: int, gap: dt.timedelta, seed: int = 9) -> dt.timedelta:
    """The latest replacement, relative to the moment the window opens (negative = in time),
    over issue times at and around period boundaries and random ones, and schedule phases
    that put a run just before, at and after a boundary, plus random ones."""
    rng = random.Random(seed)
    period = dt.timedelta(seconds=renewal.period_seconds(validity, early))
    base = renewal.period_start(validity, early, dt.datetime(2026, 12, 1, tzinfo=UTC))
    issues = [base + k * period + d for k in range(3) for d in (-S, dt.timedelta(0), S)]
    issues += [base + rng.random() * 3 * period for _ in range(60)]
    random_phases = [base + rng.random() * gap for _ in range(20)]
    worst = None
    for t0 in issues:
        opens = t0 + dt.timedelta(hours=validity - early)
        boundary = renewal.period_start(validity, early, t0) + period  # the trigger changes here
        for phase in [boundary - S, boundary, boundary + S, boundary - gap / 2, *random_phases]:
            runs = _schedule(phase, gap, t0, t0 + dt.timedelta(hours=2 * validity))
            replaced = renewal.replaced_at(validity, early, t0, runs)
            assert replaced is not None
            lateness = replaced - opens
            worst = lateness if worst is None or lateness > worst else worst
    assert worst is not None
    return worst


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("gap_kind", ["daily", "just-under-margin"])
def test_any_certificate_is_replaced_before_its_window_opens(case: str, gap_kind: str) -> None:
    validity, early = CASES[case]
    margin = dt.timedelta(hours=renewal.margin_hours(validity, early))
    gap = 24 * H if gap_kind == "daily" else margin - dt.timedelta(minutes=1)
    assert _worst_lateness(validity, early, gap) < dt.timedelta(0)


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_margin_is_tight(case: str) -> None:
    # Runs an hour further apart than the margin: a certificate issued right at a boundary,
    # with a scheduled run just before the next one, is replaced inside its window.
    validity, early = CASES[case]
    gap = dt.timedelta(hours=renewal.margin_hours(validity, early)) + H
    assert _worst_lateness(validity, early, gap) > dt.timedelta(0)


def test_replaced_at_ignores_runs_before_issue_and_in_the_same_period() -> None:
    start = renewal.period_start(720, 240, dt.datetime(2026, 12, 1, tzinfo=UTC))
    period = dt.timedelta(seconds=renewal.period_seconds(720, 240))
    t0 = start + H
    runs = [start - period, start, t0, start + period - S, start + period + 2 * H, start + 2 * period]
    assert renewal.replaced_at(720, 240, t0, runs) == start + period + 2 * H
    assert renewal.replaced_at(720, 240, t0, runs[:4]) is None


@pytest.mark.parametrize(("stack", "expected"), [("prod", "2031-06-10T00:00:00Z/PT720H"),
                                                 ("dev", "2031-06-20T00:00:00Z/PT240H")])
def test_program_puts_the_trigger_on_the_server_certificate_only(
        monkeypatch: pytest.MonkeyPatch, stack: str, expected: str) -> None:
    monkeypatch.setattr(renewal, "clock", lambda: FIXED)
    run = run_program(stack)
    [server] = run.of_type("tls:index/locallySignedCert:LocallySignedCert")
    assert server.options["replacementTrigger"] == expected
    # The CA is renewed by a procedure, never by the clock (README "Continuous delivery").
    [ca] = run.of_type("tls:index/selfSignedCert:SelfSignedCert")
    assert "replacementTrigger" not in ca.options
    assert all("replacementTrigger" not in r.options for r in run.registrations if r is not server)
