"""Show a query's result: a table for a person, CSV or JSON for a program, a PNG bar chart.

    write_result(result, "json", sys.stdout)   # [{"rank": 1, "vin": "1FLEET...", ...}, ...]
    leaderboard_chart(result, Path("fuel.png"))

Times are written in UTC ISO 8601 (`2026-11-18T11:07:27Z`, milliseconds when there are any) in
every format, so a CSV sorts and a JSON parses the same everywhere.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import json
import math
import statistics
from pathlib import Path
from typing import Any, Literal, TextIO

from rich.console import Console
from rich.table import Table

from services.query.lake import QueryError, Result

Format = Literal["table", "csv", "json"]
FORMATS: tuple[Format, ...] = ("table", "csv", "json")
# Above this many cars the chart shows the best and the worst half of this many.
CHART_MAX_BARS = 50


def plain(value: Any) -> Any:
    """A JSON-ready value: UTC ISO strings for times, floats for decimals, None for NaN."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        spec = "milliseconds" if value.microsecond else "seconds"
        return value.isoformat(timespec=spec) + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _cell(value: Any) -> str:
    value = plain(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 1e15 else repr(value)
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def write_result(result: Result, fmt: str, out: TextIO) -> None:
    """Write `result` to `out` as a table, CSV (header + rows) or JSON (a list of objects)."""
    if fmt == "json":
        rows = [{k: plain(v) for k, v in record.items()} for record in result.records()]
        out.write(json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
    elif fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            values = [plain(v) for v in row]
            writer.writerow(
                [json.dumps(v) if isinstance(v, list | dict) else ("" if v is None else v) for v in values]
            )
    elif fmt == "table":
        table = Table(show_edge=False, header_style="bold")
        numeric = [
            bool(result.rows) and all(isinstance(r[i], int | float) or r[i] is None for r in result.rows)
            for i in range(len(result.columns))
        ]
        for name, right in zip(result.columns, numeric, strict=True):
            table.add_column(name, justify="right" if right else "left")
        cells = [[_cell(v) for v in row] for row in result.rows]
        for row_cells in cells:
            table.add_row(*row_cells)
        # As wide as the data needs, even past the terminal: a cut VIN or time is worse than a long line.
        natural = sum(
            max([len(name), *(len(row_cells[i]) for row_cells in cells)]) + 3
            for i, name in enumerate(result.columns)
        )
        console = Console(file=out, width=max(natural, Console(file=out).width), soft_wrap=False)
        console.print(table)
        console.print(f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}", style="dim")
    else:
        raise QueryError(f"unknown format {fmt!r}: expected one of {', '.join(FORMATS)}")


def leaderboard_chart(result: Result, path: Path, title: str = "Fuel efficiency") -> Path:
    """A horizontal bar chart of L/100 km per car, best on top, with the fleet median; a PNG."""
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display, no GUI toolkit
        import matplotlib.pyplot as plt
    except ImportError:
        raise QueryError("--chart needs matplotlib: pip install matplotlib") from None
    if path.suffix.lower() != ".png":
        raise QueryError(f"--chart {path}: expected a .png file name")
    records = result.records()
    if not records:
        raise QueryError("--chart: no car in the leaderboard (no data in the range, or none drove --min-km)")
    shown = records
    if len(records) > CHART_MAX_BARS:
        half = CHART_MAX_BARS // 2
        shown = records[:half] + records[-half:]
        title += f" (best and worst {half} of {len(records)} cars)"
    values = [r["l_per_100km"] for r in shown]
    labels = [f"#{r['rank']} {r['vin']}" for r in shown]
    median = statistics.median(r["l_per_100km"] for r in records)
    fig, ax = plt.subplots(figsize=(9, 1.5 + 0.28 * len(shown)))
    try:
        colors = ["#2a9d8f" if v <= median else "#e76f51" for v in values]
        ax.barh(range(len(shown)), values, color=colors)
        ax.set_yticks(range(len(shown)), labels, fontsize=8, family="monospace")
        ax.invert_yaxis()  # rank 1 on top
        ax.axvline(median, color="#264653", linestyle="--", linewidth=1, label=f"fleet median {median:.2f}")
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:.2f}", va="center", fontsize=7)
        ax.set_xlabel("L/100 km (lower is better)")
        ax.set_title(title)
        ax.set_xlim(0, max(values) * 1.12)  # room for the value labels
        ax.legend(loc="upper right", fontsize=8)  # best first: the top bars are the short ones
        fig.tight_layout()
        try:
            fig.savefig(path, dpi=110)
        except OSError as exc:
            raise QueryError(f"--chart {path}: cannot write ({exc.strerror or exc})") from None
    finally:
        plt.close(fig)
    return path
