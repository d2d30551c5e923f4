"""`fleet query`: the fleet's questions over the Parquet lake (DuckDB views, read-only).

fleet query                                             # list the canned queries and the views
fleet query leaderboard --since 2026-11-17 --until 2026-11-18
fleet query leaderboard --chart fuel.png
fleet query trips --vin 1FLEET00000000003 --format csv
fleet query health --since 24h --format json | jq .
fleet query --sql "SELECT vin, max(speed_kmh) FROM chassis GROUP BY vin"
fleet query shell                                       # an interactive SQL prompt over the views
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from services.common.errors import ConfigError
from services.common.settings import LakeSettings
from services.query.filters import Filters
from services.query.lake import VIEWS, Lake, QueryError
from services.query.output import FORMATS, leaderboard_chart, write_result
from services.query.queries import QUERIES, run_query
from services.query.settings import QuerySettings
from services.query.shell import Shell


def register(verbs: Any) -> None:
    """Add `fleet query`."""
    names = ", ".join(QUERIES)
    parser = verbs.add_parser(
        "query",
        help="ask the lake: fuel leaderboard, trips, idle waste, health, freshness, or your own SQL",
        description=(
            f"Canned queries: {names}. Or --sql 'SELECT ...' over the views {', '.join(VIEWS)}, "
            "or `shell` for an interactive prompt. The lake is only read."
        ),
    )
    parser.add_argument(
        "name", nargs="?", metavar="NAME", help=f"a canned query ({names}) or `shell`; none: list them"
    )
    parser.add_argument("--sql", metavar="SQL", help="run this SQL (reading statements only) instead")
    parser.add_argument(
        "--since", metavar="TIME", help="from this event time on (ISO date/time, UTC unless given; or 2h, 7d)"
    )
    parser.add_argument("--until", metavar="TIME", help="before this event time (same forms as --since)")
    parser.add_argument(
        "--vin", action="append", default=[], metavar="VIN", help="only this car (repeat for several)"
    )
    parser.add_argument("--format", choices=FORMATS, default="table", help="output format [default: table]")
    parser.add_argument(
        "--chart", type=Path, metavar="FILE.png", help="leaderboard only: also draw a bar chart to this PNG"
    )
    LakeSettings.add_arguments(parser)
    QuerySettings.add_arguments(parser)
    parser.set_defaults(func=cmd_query)


def cmd_query(args: argparse.Namespace) -> int:
    """Check the flags, open the lake, run what was asked."""
    name = args.name
    if name is not None and name != "shell" and name not in QUERIES:
        raise QueryError(f"unknown query {name!r}: expected one of {', '.join(QUERIES)}, or shell")
    if args.sql is not None and name is not None:
        raise ConfigError("give a query NAME or --sql, not both")
    if args.chart is not None and name != "leaderboard":
        raise ConfigError("--chart goes with the leaderboard query only")
    if name == "shell" and (args.since or args.until or args.vin):
        raise ConfigError("the shell takes no --since/--until/--vin: filter in SQL")
    if args.sql is not None and (args.since or args.until or args.vin):
        raise ConfigError("--sql takes no --since/--until/--vin: filter in SQL")
    now = dt.datetime.now(dt.UTC)
    filters = Filters.parse(args.since, args.until, args.vin, now=now)
    lake = LakeSettings.from_args(args)
    settings = QuerySettings.from_args(args)
    if name is None and args.sql is None:
        _list(lake.dir)
        return 0
    db = Lake(lake.dir, threads=settings.threads)
    try:
        if name == "shell":
            return _shell(db, settings, args.format)
        if args.sql is not None:
            result = db.execute(args.sql)
        else:
            result = run_query(db, name, filters, settings, now)
        write_result(result, args.format, sys.stdout)
        if args.chart is not None:
            span = f"{args.since or 'start'} .. {args.until or 'now'}"
            leaderboard_chart(result, args.chart, title=f"Fuel efficiency, {span}")
            print(f"chart: {args.chart}", file=sys.stderr)
    finally:
        db.close()
    return 0


def _list(lake: Path) -> None:
    print(f"lake: {lake}")
    print("canned queries (fleet query NAME [--since --until --vin --format]):")
    for query in QUERIES.values():
        print(f"  {query.name:<12} {query.help}")
    print(f"views for --sql and shell: {', '.join(VIEWS)}")


def _shell(db: Lake, settings: QuerySettings, fmt: str) -> int:
    shell = Shell(db, settings, sys.stdout, sys.stderr, fmt)
    if sys.stdin.isatty():
        import readline  # noqa: F401  (line editing and history for input())

        print("fleet query shell: SQL ending in ';' over the lake's views; .help, .quit", file=sys.stderr)
        return shell.run(input)

    def read_line(prompt: str) -> str:
        line = sys.stdin.readline()
        if not line:
            raise EOFError
        return line.rstrip("\n")

    return shell.run(read_line)
