"""``parse_when``: every form ``since`` and ``until`` take, and what it says of the rest."""

from __future__ import annotations

import datetime as dt

import pytest

from steward.errors import ConfigError
from steward.report import parse_when

FIXED = 1_800_000_000.0  # "now", for durations
NOV_1 = dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp()


@pytest.mark.parametrize(("value", "seconds"), [
    (None, None),
    (0, 0.0),
    (1_700_000_000, 1_700_000_000.0),
    (1_700_000_000.5, 1_700_000_000.5),
    (dt.datetime(2026, 11, 1), NOV_1),  # naive: UTC
    (dt.datetime(2026, 11, 1, 2, tzinfo=dt.timezone(dt.timedelta(hours=2))), NOV_1),
    (dt.date(2026, 11, 1), NOV_1),
    ("2026-11-01", NOV_1),
    ("2026-11-01T09:30", NOV_1 + 9.5 * 3600),
    ("2026-11-01T09:30:00Z", NOV_1 + 9.5 * 3600),
    ("2026-11-01T09:30:00z", NOV_1 + 9.5 * 3600),
    ("2026-11-01T09:30:00+02:00", NOV_1 + 7.5 * 3600),
    ("2026-11-01T09:30:00-05:30", NOV_1 + 15 * 3600),
    (" 2026-11-01 ", NOV_1),
    ("90s", FIXED - 90),
    ("15m", FIXED - 900),
    ("12h", FIXED - 12 * 3600),
    ("7d", FIXED - 7 * 86400),
    ("7D", FIXED - 7 * 86400),
    ("1.5h", FIXED - 5400),
    ("2w", FIXED - 14 * 86400),
])
def test_each_form_is_read(value: object, seconds: float | None) -> None:
    assert parse_when(value, now=FIXED) == seconds


@pytest.mark.parametrize(("value", "says"), [
    (True, "since is a time, not True: give a datetime, epoch seconds, ISO 8601 text or a "
           "duration"),
    (False, "since is a time, not False"),
    (-1, "since must be a time after 1970 (epoch seconds), got -1."),
    (float("nan"), "since must be a time after 1970 (epoch seconds), got nan."),
    (float("inf"), "since must be a time after 1970 (epoch seconds), got inf."),
    (object(), "is neither a time nor a duration: give a datetime, epoch seconds, an ISO 8601 "
               "date or time"),
    ("yesterday", "since 'yesterday' is neither a time nor a duration: give a datetime, epoch "
                  "seconds, an ISO 8601 date or time (2026-11-01"),
    ("", "since '' is neither a time nor a duration"),
    ("7 days", "since '7 days' is neither a time nor a duration"),
    ("-7d", "since '-7d' is neither a time nor a duration"),
    ("2026-13-01", "since '2026-13-01' is neither a time nor a duration"),
    (b"2026-11-01", "since b'2026-11-01' is neither a time nor a duration"),
])
def test_anything_else_is_refused_saying_how_to_write_it(value: object, says: str) -> None:
    with pytest.raises(ConfigError) as refused:
        parse_when(value, now=FIXED)
    assert says in str(refused.value), refused.value
    assert refused.value.cli is None  # no flag named: no command-line wording


def test_the_command_lines_wording_names_its_flag() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_when("soon", name="until", flag="--until", now=FIXED)
    assert str(refused.value).startswith("until 'soon' is neither a time nor a duration")
    assert refused.value.cli is not None
    assert refused.value.cli.startswith("--until 'soon' is neither a time nor a duration: "
                                        "write an ISO 8601 date or time")
    assert "epoch seconds" not in refused.value.cli  # text is all a flag can be
