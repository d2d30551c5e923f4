"""Formats: a table for people, CSV and JSON for programs (UTC ISO times), and the PNG chart."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from services.query.filters import Filters
from services.query.lake import QueryError, Result
from services.query.output import leaderboard_chart, write_result
from services.query.queries import run_query
from services.query.settings import QuerySettings

RESULT = Result(
    ("vin", "ts", "value", "codes", "note"),
    [
        (
            "1FLEET00000000042",
            dt.datetime(2026, 11, 17, 10, 0, 5, 250000, tzinfo=dt.UTC),
            1.25,
            ["P0300"],
            None,
        ),
        ("1FLEET00000000043", dt.datetime(2026, 11, 17, 10, 0, 6, tzinfo=dt.UTC), float("nan"), [], "a,b"),
    ],
)


def render(result, fmt):
    out = io.StringIO()
    write_result(result, fmt, out)
    return out.getvalue()


def test_json_is_a_list_of_objects_with_utc_iso_times():
    assert json.loads(render(RESULT, "json")) == [
        {
            "vin": "1FLEET00000000042",
            "ts": "2026-11-17T10:00:05.250Z",
            "value": 1.25,
            "codes": ["P0300"],
            "note": None,
        },
        {"vin": "1FLEET00000000043", "ts": "2026-11-17T10:00:06Z", "value": None, "codes": [], "note": "a,b"},
    ]


def test_csv_has_a_header_and_quotes_what_needs_it():
    rows = list(csv.reader(io.StringIO(render(RESULT, "csv"))))
    assert rows == [
        ["vin", "ts", "value", "codes", "note"],
        ["1FLEET00000000042", "2026-11-17T10:00:05.250Z", "1.25", '["P0300"]', ""],
        ["1FLEET00000000043", "2026-11-17T10:00:06Z", "", "[]", "a,b"],
    ]


def test_table_shows_whole_values_even_in_a_narrow_pipe():
    text = render(RESULT, "table")
    assert "1FLEET00000000042" in text and "2026-11-17T10:00:05.250Z" in text
    assert text.rstrip().endswith("2 rows")


def test_unknown_format():
    with pytest.raises(QueryError, match="unknown format 'xml'"):
        render(RESULT, "xml")


def test_leaderboard_chart_is_a_png(lake, tmp_path):
    result = run_query(lake, "leaderboard", Filters(), QuerySettings())
    path = leaderboard_chart(result, tmp_path / "fuel.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_chart_errors_are_one_line(lake, tmp_path):
    result = run_query(lake, "leaderboard", Filters(), QuerySettings())
    with pytest.raises(QueryError, match="expected a .png file name"):
        leaderboard_chart(result, tmp_path / "fuel.svg")
    with pytest.raises(QueryError, match="no car in the leaderboard"):
        leaderboard_chart(Result(result.columns, []), tmp_path / "fuel.png")
    with pytest.raises(QueryError, match="cannot write"):
        leaderboard_chart(result, tmp_path / "missing-dir" / "fuel.png")
