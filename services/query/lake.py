"""DuckDB views over the Parquet lake, on a connection that can only read it.

    lake = Lake(Path(".fleet/lake"))
    lake.execute("SELECT vin, max(odometer_km) FROM chassis GROUP BY vin")   # Result(columns, rows)
    lake.execute("COPY chassis TO 'x.csv'")      # QueryError: COPY statements are refused

The lake (written by `fleet cold`):

    <lake>/<subsystem>/date=YYYY-MM-DD/hour=HH/<topic>+<partition>+<first>+<last>.parquet
    <lake>/alerts/date=YYYY-MM-DD/hour=HH/alerts.health+<partition>+<first>+<last>.parquet

One view per folder (`engine`, ..., `infotainment`, `alerts`): the files' columns (union by name,
so files written before a column was added still read), plus the partition columns `date` (DATE)
and `hour` (INTEGER), which DuckDB uses to skip files when a query filters on them. A folder that
is missing or holds no file yet gives an empty view with the same columns, never an error.

Read-only, three ways: the database is in memory (nothing of ours is ever written), every
statement must be a reading one (SELECT, EXPLAIN, PRAGMA: COPY, EXPORT, ATTACH, INSTALL... are
refused before they run), and the connection may touch no file outside the lake
(`enable_external_access=false` with the lake as the one allowed directory), locked so a
statement cannot undo it. Which files a view reads is the cold path's rule
(`services.cold.layout.visible`): no temporary file, no file a compacted one supersedes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from schemas.catalog import SUBSYSTEMS
from services.cold.decode import FILE_SCHEMAS
from services.cold.layout import scan, visible
from services.common.errors import FleetError

VIEWS: tuple[str, ...] = (*SUBSYSTEMS, "alerts")
TIMESTAMP_UTC = pa.timestamp("ms", tz="UTC")


def lake_schema(view: str) -> pa.Schema:
    """The columns of one lake folder's files: what the cold writer writes (services/cold/decode.py)."""
    return FILE_SCHEMAS[view]


class QueryError(FleetError):
    """A query could not run: bad SQL, an unknown query name, a refused statement."""


@dataclasses.dataclass(frozen=True)
class Result:
    """Column names and rows of one query."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        """One dict per row."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
    pa.int8(): "TINYINT",
    pa.int16(): "SMALLINT",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    TIMESTAMP_UTC: "TIMESTAMPTZ",
    pa.list_(pa.string()): "VARCHAR[]",
}
_PARTITION_TYPES = "{'date': DATE, 'hour': INTEGER}"
# Statements that only read; anything else (COPY, EXPORT, ATTACH, INSTALL, LOAD, SET...) is refused.
_READING = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN, duckdb.StatementType.PRAGMA}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def lake_files(root: Path, view: str) -> list[Path]:
    """The files a view reads: the folder's lake files minus those a compacted file supersedes.

    Compaction writes a merged file, then deletes the ones it covers; until then (or after a crash
    in between) both are on disk, and reading both would count their rows twice. Rejects
    (`_rejects/`) have other columns and are never read; temporary files are hidden.
    """
    own = root / view
    return [f.path for f in visible(scan(root, view)) if f.path.parent.parent.parent == own]


def files_sql(view: str, files: list[Path]) -> str:
    """The SELECT over a view's files (all, or some), or an empty table with their columns."""
    if files:
        listed = ", ".join(_quote(str(path)) for path in files)
        return (
            f"SELECT * FROM read_parquet([{listed}], hive_partitioning = true, "
            f"union_by_name = true, hive_types = {_PARTITION_TYPES})"
        )
    columns = [f"CAST(NULL AS {_DUCKDB_TYPES[f.type]}) AS {f.name}" for f in lake_schema(view)]
    columns += ["CAST(NULL AS DATE) AS date", "CAST(NULL AS INTEGER) AS hour"]
    return f"SELECT {', '.join(columns)} WHERE false"


class Lake:
    """An in-memory DuckDB connection with one view per lake folder, unable to write files."""

    def __init__(self, root: Path, *, threads: int = 0):
        self.root = root.resolve()
        self.con = duckdb.connect(":memory:")
        self.files: dict[str, list[Path]] = {}  # view -> the files it reads
        self.con.execute("SET TimeZone = 'UTC'")  # timestamps show and truncate in UTC, like the layout
        if threads:
            self.con.execute(f"SET threads = {int(threads)}")
        self.refresh()
        self.con.execute(f"SET allowed_directories = [{_quote(str(self.root) + '/')}]")
        self.con.execute("SET enable_external_access = false")
        self.con.execute("SET lock_configuration = true")

    def refresh(self) -> None:
        """Point every view at the files visible now (new flushes, compactions since the last look)."""
        for view in VIEWS:
            self.files[view] = lake_files(self.root, view)
            self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {files_sql(view, self.files[view])}")

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Result:
        """Run reading SQL and return the last statement's rows; errors are one-line QueryErrors."""
        return self.execute_built(lambda: (sql, params))

    def execute_built(self, build: Callable[[], tuple[str, Mapping[str, Any] | None]]) -> Result:
        """Run the SQL `build()` makes from the current listing (`self.files`); see `execute`.

        A file compacted away between listing and reading fails the read (or `build`, if it
        reads footers): the views are listed again, and the statement is built and run once more.
        """
        try:
            sql, params = build()
            check_reading(sql)
            return self._run(sql, params)
        except (duckdb.IOException, FileNotFoundError):
            self.refresh()
        except duckdb.Error as exc:
            raise QueryError(one_line(exc)) from None
        try:
            sql, params = build()
            return self._run(sql, params)
        except (duckdb.Error, FileNotFoundError) as exc:
            raise QueryError(one_line(exc)) from None

    def _run(self, sql: str, params: Mapping[str, Any] | None) -> Result:
        cursor = self.con.execute(sql, params) if params is not None else self.con.execute(sql)
        description = cursor.description or []
        rows = cursor.fetchall() if description else []
        return Result(tuple(d[0] for d in description), rows)

    def close(self) -> None:
        """Close the connection (safe twice)."""
        self.con.close()


def one_line(exc: BaseException) -> str:
    """DuckDB's message without its multi-line context (LINE 1: ... ^)."""
    text = str(exc).strip().split("\n")[0].strip()
    return text or type(exc).__name__


def check_reading(sql: str) -> None:
    """Refuse SQL that does not parse or that could write (COPY ... TO, EXPORT, ATTACH, ...)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(one_line(exc)) from None
    if not statements:
        raise QueryError("no SQL statement given")
    for statement in statements:
        if statement.type not in _READING:
            kind = statement.type.name
            raise QueryError(
                f"{kind} statements are refused: the lake is read-only (SELECT, EXPLAIN, PRAGMA)"
            )
