"""--since / --until / --vin: the forms a person types, and one-line errors for the rest."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.errors import ConfigError
from services.query.filters import Filters, parse_time

NOW = dt.datetime(2026, 11, 18, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-11-17", dt.datetime(2026, 11, 17, tzinfo=dt.UTC)),
        ("2026-11-17T10:30", dt.datetime(2026, 11, 17, 10, 30, tzinfo=dt.UTC)),
        ("2026-11-17 10:30:05", dt.datetime(2026, 11, 17, 10, 30, 5, tzinfo=dt.UTC)),
        ("2026-11-17T10:30Z", dt.datetime(2026, 11, 17, 10, 30, tzinfo=dt.UTC)),
        ("2026-11-17T12:30+02:00", dt.datetime(2026, 11, 17, 10, 30, tzinfo=dt.UTC)),
        ("now", NOW),
        ("90s", NOW - dt.timedelta(seconds=90)),
        ("30m", NOW - dt.timedelta(minutes=30)),
        ("2h", NOW - dt.timedelta(hours=2)),
        ("1.5d", NOW - dt.timedelta(hours=36)),
        ("1w", NOW - dt.timedelta(days=7)),
    ],
)
def test_time_forms(raw, expected):
    got = parse_time(raw, "--since", NOW)
    assert got == expected
    assert got.tzinfo is not None


@pytest.mark.parametrize("raw", ["yesterday", "2026-13-01", "17/11/2026", "2h ago", "-1h", ""])
def test_bad_times_are_one_line_config_errors(raw):
    with pytest.raises(ConfigError) as info:
        Filters.parse(since=raw or " ", now=NOW)
    assert str(info.value).startswith("--since ")
    assert "\n" not in str(info.value)


def test_an_empty_range_is_refused():
    with pytest.raises(ConfigError, match="is not before --until"):
        Filters.parse(since="2026-11-18", until="2026-11-17", now=NOW)


def test_where_uses_only_the_given_filters():
    assert Filters().where() == "TRUE"
    f = Filters.parse(since="2h", vins=["V1", " V2 "], now=NOW)
    assert f.vins == ("V1", "V2")
    sql = f.where()
    assert "ts >= $since" in sql and "date >= CAST($since AS DATE)" in sql and "$until" not in sql
    assert f.params(sql) == {"since": NOW - dt.timedelta(hours=2), "vins": ["V1", "V2"]}
    assert "$since" not in f.where(since=False)
