"""`fleet lake compact | audit`: maintain and check the Parquet lake the cold writers fill."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from services.cold.audit import PartitionAudit, audit_lake, kafka_positions
from services.cold.compact import compact
from services.cold.flush import ParquetOptions
from services.cold.settings import ColdSettings
from services.common.logging import configure_logging
from services.common.settings import KafkaSettings, LakeSettings, LogSettings

EXIT_NOT_CLEAN = 1


def register(verbs: Any) -> None:
    """Add `fleet lake` and its subcommands."""
    parser = verbs.add_parser("lake", help="compact or audit the Parquet lake")
    sub = parser.add_subparsers(dest="lake_verb", metavar="<subcommand>", required=True)

    compact_p = sub.add_parser(
        "compact", help="merge each closed hour's files into large sorted ones (crash-safe)"
    )
    ColdSettings.add_arguments(
        compact_p, only={"topic_prefix", "alerts_topic", "compression", "row_group_rows", "compact_grace_s"}
    )
    LakeSettings.add_arguments(compact_p)
    LogSettings.add_arguments(compact_p)
    compact_p.add_argument("--dry-run", action="store_true", help="say what would be merged, change nothing")
    compact_p.add_argument("--json", action="store_true", help="print the report as JSON")
    compact_p.set_defaults(func=cmd_compact)

    audit_p = sub.add_parser(
        "audit",
        help="check that the lake holds every offset from the earliest to the committed one exactly once",
    )
    ColdSettings.add_arguments(audit_p, only={"group_id", "topic_prefix", "alerts_topic"})
    LakeSettings.add_arguments(audit_p)
    KafkaSettings.add_arguments(audit_p, only={"bootstrap"})
    LogSettings.add_arguments(audit_p)
    audit_p.add_argument("--json", action="store_true", help="print the verdict per partition as JSON")
    audit_p.set_defaults(func=cmd_audit)


def cmd_compact(args: argparse.Namespace) -> int:
    """Compact every closed hour of every kind."""
    settings = ColdSettings.from_args(args)
    lake = LakeSettings.from_args(args)
    configure_logging(LogSettings.from_args(args).level)
    options = ParquetOptions(settings.compression, settings.row_group_rows)
    kinds = sorted(set(settings.kinds.values()))
    report = compact(lake.dir, kinds, options, time.time(), settings.compact_grace_s, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        verb = "would merge" if args.dry_run else "merged"
        print(
            f"{verb} {report.files_in} files into {report.files_out} ({report.rows} rows) "
            f"in {report.folders} closed hour folders; removed {report.superseded_removed} superseded "
            f"and {report.temps_removed} temp files; {report.skipped_pending} partitions skipped "
            "(flush pending)"
        )
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    """Audit the lake against Kafka; exit 1 unless every partition is clean."""
    settings = ColdSettings.from_args(args)
    lake = LakeSettings.from_args(args)
    kafka = KafkaSettings.from_args(args)
    configure_logging(LogSettings.from_args(args).level)
    kinds = settings.kinds
    partitions, earliest, committed = asyncio.run(kafka_positions(kafka, settings.group_id, kinds))
    results = audit_lake(lake.dir, kinds, partitions, earliest, committed)
    clean = all(r.ok for r in results)
    if args.json:
        print(
            json.dumps(
                {"ok": clean, "group": settings.group_id, "partitions": [r.as_dict() for r in results]}
            )
        )
    else:
        _print_audit(results, settings.group_id, clean)
    return 0 if clean else EXIT_NOT_CLEAN


def _span(ranges: list[tuple[int, int]], limit: int = 3) -> str:
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in ranges[:limit])
    return text + (f" (+{len(ranges) - limit} more)" if len(ranges) > limit else "")


def _print_audit(results: list[PartitionAudit], group: str, clean: bool) -> None:
    width = max((len(r.topic) for r in results), default=5)
    print(f"{'topic':<{width}}  part  earliest  committed      rows  ahead  verdict")
    for r in results:
        committed = "-" if r.committed is None else str(r.committed)
        verdict = "ok"
        if r.gaps:
            verdict = f"GAP {_span(r.gaps)}"
        if r.overlaps:
            verdict = (verdict + "; " if r.gaps else "") + f"OVERLAP {_span(r.overlaps)}"
        if r.pending_journal:
            verdict += " (flush pending)"
        print(
            f"{r.topic:<{width}}  {r.partition:>4}  {r.earliest:>8}  {committed:>9}  {r.rows:>8}  "
            f"{r.ahead:>5}  {verdict}"
        )
    bad = sum(1 for r in results if not r.ok)
    summary = "clean" if clean else f"NOT clean: {bad} of {len(results)} partitions"
    print(f"lake audit for group {group}: {summary}")
