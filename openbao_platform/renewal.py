"""Clock-driven certificate renewal: a ``replacement_trigger`` that changes once per period.

Why not rely on pulumi-tls alone: pulumi-tls 5.x (the upstream plugin-framework provider
behind the terraform bridge) does plan a replacement inside the early-renewal window, but
only on whichever ``pulumi up`` happens to run then, and only by a clock check inside the
provider that no test here can drive. The trigger makes renewal a pure function of the
settings and the clock, visible in the program's own registrations, and early: the server
certificate is re-issued *before* its early-renewal window opens, so the window (and the
``OpenBaoCertificateRenewalDue`` alert that fires in it) is the humans' margin, not the plan.
README "Continuous delivery" has the sources and the schedule that relies on this.

The model, in hours, with ``V = validity`` and ``E = early renewal``:

* The renewal period is ``P = (V - E) / 2``; periods are anchored at the Unix epoch, so every
  run, on any machine, agrees on where one ends. The trigger value names the current period.
* A certificate issued at ``t0`` (in period ``k``) carries the trigger of period ``k``; the
  first ``pulumi up`` at or after the next boundary ``(k + 1) * P <= t0 + P`` replaces it.
* It must be replaced before ``t0 + V - E`` (its window opens). If successful runs are never
  more than ``G`` hours apart, the replacement happens by ``t0 + P + G``, so ``G`` must stay
  below the *margin* ``M = (V - E) - P`` (half of ``V - E``): 720 h for the defaults and prod
  (2160/720), 240 h for dev (720/240). A scheduled run every day leaves room for many misses.

Only the server certificate uses it. The CA is not renewed by the clock: a new CA must reach
every client before the old one expires, and the CA is ``protect``-ed in production, so an
automatic replacement would be refused by the engine anyway. See ``openbao_platform/pki.py``.
"""

from __future__ import annotations

import datetime as dt
from typing import Callable, Iterable, Optional

UTC = dt.timezone.utc
#: Periods start at whole multiples of the period length after this instant.
ANCHOR = dt.datetime(1970, 1, 1, tzinfo=UTC)


def system_clock() -> dt.datetime:
    """The current time, UTC."""
    return dt.datetime.now(UTC)


#: The clock the program reads (once per run, when ClusterPki builds the server certificate).
#: Tests replace it; it must return a timezone-aware datetime.
clock: Callable[[], dt.datetime] = system_clock


def _check(validity_hours: int, early_renewal_hours: int) -> None:
    if not 0 <= early_renewal_hours < validity_hours:
        raise ValueError(f"need 0 <= early_renewal_hours ({early_renewal_hours}) "
                         f"< validity_hours ({validity_hours})")


def period_seconds(validity_hours: int, early_renewal_hours: int) -> int:
    """Length of one renewal period: half the time a certificate spends outside its window."""
    _check(validity_hours, early_renewal_hours)
    return (validity_hours - early_renewal_hours) * 3600 // 2


def margin_hours(validity_hours: int, early_renewal_hours: int) -> float:
    """The longest gap between two successful ``pulumi up`` runs that still replaces every
    certificate before its early-renewal window opens (runs must be closer than this)."""
    usable = (validity_hours - early_renewal_hours) * 3600
    return (usable - period_seconds(validity_hours, early_renewal_hours)) / 3600


def _seconds_since_anchor(now: dt.datetime) -> dt.timedelta:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"the renewal clock must return an aware datetime, got {now!r}")
    return now - ANCHOR


def renewal_epoch(validity_hours: int, early_renewal_hours: int, now: dt.datetime) -> int:
    """Index of the renewal period that contains ``now`` (0 is the one starting at ANCHOR)."""
    period = dt.timedelta(seconds=period_seconds(validity_hours, early_renewal_hours))
    return _seconds_since_anchor(now) // period


def period_start(validity_hours: int, early_renewal_hours: int, now: dt.datetime) -> dt.datetime:
    """Start of the renewal period that contains ``now``."""
    period = period_seconds(validity_hours, early_renewal_hours)
    return ANCHOR + dt.timedelta(seconds=period * renewal_epoch(validity_hours, early_renewal_hours, now))


def _duration(seconds: int) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes = rest // 60
    return f"PT{hours}H" + (f"{minutes}M" if minutes else "")


def renewal_trigger(validity_hours: int, early_renewal_hours: int,
                    now: Optional[dt.datetime] = None) -> str:
    """The ``replacement_trigger`` value: the current period as an ISO 8601 interval
    (start/duration), e.g. ``2026-11-14T00:00:00Z/PT720H``. ``now`` defaults to ``clock()``.

    Any change replaces the resource, including a change of the settings: a new
    ``earlyRenewalHours`` or ``serverValidityHours`` moves the period, so it re-issues the
    certificate once (a new validity re-issues it anyway).
    """
    now = clock() if now is None else now
    start = period_start(validity_hours, early_renewal_hours, now)
    return f"{start:%Y-%m-%dT%H:%M:%SZ}/{_duration(period_seconds(validity_hours, early_renewal_hours))}"


def replaced_at(validity_hours: int, early_renewal_hours: int, issued_at: dt.datetime,
                runs: Iterable[dt.datetime]) -> Optional[dt.datetime]:
    """When the first of ``runs`` (``pulumi up`` times) replaces a certificate issued at
    ``issued_at``: the first run after it whose trigger differs from the one it was issued
    with. None if no run does."""
    issued_with = renewal_epoch(validity_hours, early_renewal_hours, issued_at)
    for run in sorted(runs):
        if run >= issued_at and renewal_epoch(validity_hours, early_renewal_hours, run) != issued_with:
            return run
    return None
