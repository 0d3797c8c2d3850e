"""The one cron check every schedule setting uses (backup, configuration drift)."""

import re

_CRON_FIELD = re.compile(r"^[0-9*/,\-]+$")


def is_five_field_cron(expression: str) -> bool:
    """Five fields of digits, ``*``, ``/``, ``,`` and ``-``: what a CronJob's schedule accepts here."""
    fields = expression.split()
    return len(fields) == 5 and all(_CRON_FIELD.match(f) for f in fields)
