"""When a report starts and ends: epoch seconds, datetimes, ISO 8601 text or durations back
from now.

``parse_when`` takes what a caller may write for ``since`` and ``until``: None (unbounded), a
number (epoch seconds), a ``datetime`` or ``date`` (naive ones are UTC), ISO 8601 text
(``2026-11-01``, ``2026-11-01T09:30``, ``2026-11-01T09:30:00+02:00``, ``...Z``) or a duration
back from now (``90s``, ``15m``, ``12h``, ``7d``, ``2w``). Anything else is a ConfigError that
names what was given and how to write it, under the name the caller knows it by (``since`` in
Python; its ``cli`` wording says ``--since``, the command line's option).
"""

from __future__ import annotations

import datetime as dt
import math
import re
import time

from steward.errors import ConfigError

__all__ = ["When", "parse_when"]

# What ``since`` and ``until`` take.
When = float | int | dt.datetime | dt.date | str | None

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])", re.ASCII)


def _utc(moment: dt.datetime) -> float:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.timestamp()


def parse_when(value: When | object, *, name: str = "since", flag: str | None = None,
               now: float | None = None) -> float | None:
    """``value`` as epoch seconds (see the module); None stays None. ``flag``: the command-line
    option that text came from (``--since``), named by the error's ``cli`` wording."""

    if value is None:
        return None
    if isinstance(value, bool):
        raise ConfigError(f"{name} is a time, not {value!r}: give a datetime, epoch seconds, "
                          "ISO 8601 text or a duration back from now such as '7d'.")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise ConfigError(f"{name} must be a time after 1970 (epoch seconds), got "
                              f"{value!r}.")
        return float(value)
    if isinstance(value, dt.datetime):
        return _utc(value)
    if isinstance(value, dt.date):
        return _utc(dt.datetime(value.year, value.month, value.day))
    if isinstance(value, str):
        text = value.strip()
        found = _DURATION.fullmatch(text.lower())
        if found:
            back = float(found.group(1)) * _UNITS[found.group(2)]
            return (time.time() if now is None else now) - back
        try:
            return _utc(dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z",
                                                                                      "+00:00")))
        except ValueError:
            pass
    how = ("an ISO 8601 date or time (2026-11-01, 2026-11-01T09:30, 2026-11-01T09:30:00+02:00; "
           "UTC unless it says) or a duration back from now (90s, 15m, 12h, 7d, 2w)")
    raise ConfigError(
        f"{name} {value!r} is neither a time nor a duration: give a datetime, epoch seconds, "
        f"{how}.",
        cli=f"{flag} {value!r} is neither a time nor a duration: write {how}." if flag else None)
