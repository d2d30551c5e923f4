"""`fleet query` as a person runs it: formats, filters, the chart, and one-line errors.

Most cases call the CLI's `main` in-process (fast); a few run the installed `fleet` script to show
the same from outside (exit code, stderr, no traceback).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import subprocess

import pytest

from services.cli import main
from tests.helpers import FLEET_BIN, run_fleet


@dataclasses.dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


def fleet_query(lake_dir, *args, monkeypatch=None, capsys=None):
    """`fleet query ARGS` in-process, with FLEET_LAKE_DIR pointing at the lake."""
    monkeypatch.setenv("FLEET_LAKE_DIR", str(lake_dir))
    with pytest.raises(SystemExit) as exit_info:
        main(["query", *args])
    out, err = capsys.readouterr()
    return Ran(exit_info.value.code or 0, out, err)


@pytest.fixture
def query(lake_dir, monkeypatch, capsys):
    return lambda *args: fleet_query(lake_dir, *args, monkeypatch=monkeypatch, capsys=capsys)


def test_leaderboard_json_with_filters(query):
    result = query("leaderboard", "--vin", "A", "--vin", "B", "--format", "json")
    assert result.returncode == 0, result.stderr
    got = json.loads(result.stdout)
    assert [(r["rank"], r["vin"], r["l_per_100km"], r["percentile"]) for r in got] == [
        (1, "A", 10.909, 100.0),
        (2, "B", 12.973, 0.0),
    ]


def test_trips_csv_and_since_until_and_settings_flags(query):
    result = query(
        "trips",
        "--since",
        "2026-11-17T09:59Z",
        "--until",
        "2026-11-17T10:05Z",
        "--vin",
        "B",
        "--stop-s",
        "60",
        "--gap-s",
        "30",
        "--format",
        "csv",
    )
    assert result.returncode == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["trip"], r["start"], r["distance_km"]) for r in rows] == [
        ("1", "2026-11-17T09:59:00Z", "0.3"),
        ("2", "2026-11-17T10:00:30Z", "0.3"),
        ("3", "2026-11-17T10:02:20Z", "0.25"),
    ]


def test_table_format_and_chart(query, tmp_path):
    chart = tmp_path / "fuel.png"
    result = query("leaderboard", "--chart", str(chart))
    assert result.returncode == 0, result.stderr
    assert "10.909" in result.stdout and "4 rows" in result.stdout
    assert chart.read_bytes()[:4] == b"\x89PNG"


def test_sql_and_the_listing(query):
    result = query("--sql", "SELECT count(*) AS n FROM alerts", "--format", "csv")
    assert (result.returncode, result.stdout) == (0, "n\n9\n")
    listing = query()
    assert listing.returncode == 0 and "leaderboard" in listing.stdout and "freshness" in listing.stdout


def test_shell_reads_statements_from_a_pipe(lake_dir):
    result = subprocess.run(
        [FLEET_BIN, "query", "shell", "--format", "csv"],
        env=os.environ | {"FLEET_LAKE_DIR": str(lake_dir)},
        input="SELECT count(*) AS n\nFROM engine;\n.quit\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "n\n33\n", "")


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["fastest"], 1, "fleet: error: unknown query 'fastest': expected one of leaderboard, trips"),
        (["--sql", "SELEC 1"], 1, 'fleet: error: Parser Error: syntax error at or near "SELEC"'),
        (
            ["--sql", "SELECT * FROM nope"],
            1,
            "fleet: error: Catalog Error: Table with name nope does not exist!",
        ),
        (["--sql", "COPY engine TO 'x.csv'"], 1, "fleet: error: COPY statements are refused"),
        (
            ["trips", "--since", "last tuesday"],
            2,
            "fleet: error: --since 'last tuesday': expected an ISO date",
        ),
        (["trips", "--until", "2026-02-30"], 2, "fleet: error: --until '2026-02-30': expected an ISO date"),
        (["trips", "--since", "2026-11-18", "--until", "2026-11-17"], 2, "is not before --until"),
        (["trips", "--format", "xml"], 2, "fleet query: error: argument --format: invalid choice: 'xml'"),
        (["trips", "--chart", "x.png"], 2, "fleet: error: --chart goes with the leaderboard query only"),
        (["trips", "--sql", "SELECT 1"], 2, "fleet: error: give a query NAME or --sql, not both"),
        (["trips", "--stop-s", "-1"], 2, "fleet: error: FLEET_QUERY_STOP_S=-1.0: expected > 0"),
        (
            ["leaderboard", "--chart", "/nonexistent/dir/x.png"],
            1,
            "fleet: error: --chart /nonexistent/dir/x.png: cannot write",
        ),
    ],
)
def test_errors_are_one_line(query, args, code, message):
    result = query(*args)
    assert result.returncode == code, result.stderr
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "Traceback" not in result.stderr


def test_from_outside_errors_are_one_line_without_traceback(lake_dir):
    env = os.environ | {"FLEET_LAKE_DIR": str(lake_dir)}
    for args, code in (
        (["query", "--sql", "SELECT * FROM nope"], 1),
        (["query", "trips", "--since", "soon"], 2),
    ):
        result = run_fleet(args, env=env)
        assert result.returncode == code
        assert result.stderr.startswith("fleet: error: ") and result.stderr.count("\n") == 1
        assert "Traceback" not in result.stderr


def test_bad_environment_setting_is_one_line(lake_dir):
    env = os.environ | {"FLEET_LAKE_DIR": str(lake_dir), "FLEET_QUERY_MIN_KM": "lots"}
    result = run_fleet(["query", "leaderboard"], env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == "fleet: error: FLEET_QUERY_MIN_KM='lots': expected a number"
