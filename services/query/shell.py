"""`fleet query shell`: a small interactive SQL prompt over the lake's views.

    fleet> SELECT vin, max(speed_kmh) FROM chassis
      ...> GROUP BY vin;
    fleet> .tables
    fleet> .schema chassis
    fleet> .format csv
    fleet> .run leaderboard

Why not DuckDB's own shell: the `duckdb` Python package ships no shell binary, and the separate
CLI would be a second DuckDB (another version) that knows nothing of our views or of the
read-only guard. This prompt runs every statement through the same connection and checks as
`fleet query --sql`: statements end with `;`, errors are one line and the prompt carries on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TextIO

from services.common.errors import FleetError
from services.query.filters import Filters
from services.query.lake import VIEWS, Lake
from services.query.output import FORMATS, write_result
from services.query.queries import QUERIES, run_query
from services.query.settings import QuerySettings

HELP = """\
SQL statements end with ';' and may span lines. Views: {views}.
  .tables            the views and their row counts
  .schema VIEW       the columns of a view
  .run NAME          a canned query ({queries})
  .format FORMAT     table, csv or json (now: {fmt})
  .help              this text
  .quit              leave (or Ctrl-D)"""


class Shell:
    """Reads statements from `read_line` until .quit or end of input; writes results to `out`."""

    def __init__(
        self,
        lake: Lake,
        settings: QuerySettings,
        out: TextIO,
        err: TextIO,
        fmt: str = "table",
    ):
        self.lake = lake
        self.settings = settings
        self.out = out
        self.err = err
        self.fmt = fmt

    def run(self, read_line: Callable[[str], str]) -> int:
        """The loop; `read_line(prompt)` raises EOFError at the end of input."""
        buffer: list[str] = []
        while True:
            try:
                line = read_line("fleet> " if not buffer else "  ...> ")
            except EOFError:
                break
            except KeyboardInterrupt:  # Ctrl-C drops the statement being typed, not the shell
                buffer.clear()
                self.err.write("\n")
                continue
            if not buffer and line.strip().startswith("."):
                if not self.command(line.strip()):
                    break
                continue
            buffer.append(line)
            if line.rstrip().endswith(";"):
                self.sql("\n".join(buffer))
                buffer.clear()
        if buffer and "".join(buffer).strip():
            self.sql("\n".join(buffer))
        return 0

    def sql(self, text: str) -> None:
        """Run one or more statements and show the last result; errors are one line."""
        self.lake.refresh()  # the cold path keeps writing while the shell is open
        try:
            result = self.lake.execute(text)
        except FleetError as exc:
            self.err.write(f"error: {exc}\n")
            return
        except KeyboardInterrupt:  # Ctrl-C stops the statement, not the shell
            self.lake.con.interrupt()
            self.err.write("interrupted\n")
            return
        if result.columns:
            write_result(result, self.fmt, self.out)

    def command(self, line: str) -> bool:
        """A dot-command; False to leave."""
        name, _, arg = line.partition(" ")
        arg = arg.strip()
        try:
            if name in (".quit", ".exit"):
                return False
            if name == ".help":
                self.out.write(
                    HELP.format(views=", ".join(VIEWS), queries=", ".join(QUERIES), fmt=self.fmt) + "\n"
                )
            elif name == ".tables":
                union = " UNION ALL ".join(f"SELECT '{v}' AS view, count(*) AS rows FROM {v}" for v in VIEWS)
                write_result(self.lake.execute(union), self.fmt, self.out)
            elif name == ".schema" and arg in VIEWS:
                write_result(self.lake.execute(f"DESCRIBE {arg}"), self.fmt, self.out)
            elif name == ".format" and arg in FORMATS:
                self.fmt = arg
            elif name == ".run" and arg in QUERIES:
                now = dt.datetime.now(dt.UTC)
                write_result(run_query(self.lake, arg, Filters(), self.settings, now), self.fmt, self.out)
            else:
                self.err.write(f"error: unknown or incomplete command {line!r} (.help lists them)\n")
        except FleetError as exc:
            self.err.write(f"error: {exc}\n")
        return True
