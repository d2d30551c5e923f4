"""`fleet query shell`: statements over several lines, dot-commands, errors that do not end it."""

from __future__ import annotations

import io

from services.query.settings import QuerySettings
from services.query.shell import Shell


def run_shell(lake, lines, fmt="csv"):
    out, err = io.StringIO(), io.StringIO()
    feed = iter(lines)

    def read_line(prompt):
        try:
            return next(feed)
        except StopIteration:
            raise EOFError from None

    code = Shell(lake, QuerySettings(), out, err, fmt).run(read_line)
    return code, out.getvalue(), err.getvalue()


def test_statements_span_lines_and_errors_do_not_stop_the_shell(lake):
    code, out, err = run_shell(
        lake,
        [
            "SELECT count(*) AS n",
            "FROM chassis;",
            "SELEC 1;",
            "COPY chassis TO 'x.csv';",
            ".bogus",
            "SELECT 2 AS two;",
        ],
    )
    assert code == 0
    assert out == "n\n33\ntwo\n2\n"
    assert err.splitlines() == [
        'error: Parser Error: syntax error at or near "SELEC"',
        "error: COPY statements are refused: the lake is read-only (SELECT, EXPLAIN, PRAGMA)",
        "error: unknown or incomplete command '.bogus' (.help lists them)",
    ]


def test_dot_commands(lake):
    code, out, err = run_shell(
        lake, [".help", ".tables", ".schema alerts", ".format json", ".run health", ".quit", "SELECT 1;"]
    )
    assert code == 0 and err == ""
    assert ".run NAME" in out
    assert "engine,33" in out and "alerts,9" in out
    assert "alert_id,VARCHAR" in out
    assert '"open_critical": 1' in out
    assert "SELECT 1" not in out and out.rstrip().endswith("]")  # nothing ran after .quit


def test_a_statement_without_a_semicolon_at_the_end_of_input_still_runs(lake):
    _, out, _ = run_shell(lake, ["SELECT 3 AS three"])
    assert out == "three\n3\n"
