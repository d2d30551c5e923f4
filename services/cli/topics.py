"""`fleet topics apply|list|describe|locate`: provision and inspect the pipeline's topics."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.console import Console
from rich.table import Table

from services.common import probes, topics
from services.common.errors import BrokerUnavailable, ConfigError
from services.common.kafka import make_admin
from services.common.partitioning import partition_for
from services.common.settings import KafkaSettings

T = TypeVar("T")


def register(verbs: Any) -> None:
    """Add `fleet topics ...`."""
    parser = verbs.add_parser("topics", help="provision and inspect Kafka topics (infra/topics.yaml)")
    sub = parser.add_subparsers(dest="action", metavar="<action>", required=True)

    apply = sub.add_parser(
        "apply", help="create missing topics; never deletes; exit 1 on a partition mismatch"
    )
    apply.add_argument("--dry-run", action="store_true", help="say what would be created, change nothing")
    _common(apply)
    apply.set_defaults(func=cmd_apply)

    lst = sub.add_parser("list", help="topics of the file and whether the broker has them")
    _common(lst)
    lst.set_defaults(func=cmd_list)

    describe = sub.add_parser("describe", help="partitions, replication and configs on the broker")
    describe.add_argument("names", nargs="*", help="topics (default: those in the file)")
    _common(describe)
    describe.set_defaults(func=cmd_describe)

    locate = sub.add_parser("locate", help="the partition a key (VIN) lands on, per topic (Java murmur2)")
    locate.add_argument("key", help="record key, e.g. a VIN")
    _common(locate)
    locate.set_defaults(func=cmd_locate)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file",
        type=Path,
        default=topics.DEFAULT_TOPICS_FILE,
        help="topics file [default: infra/topics.yaml]",
    )
    parser.add_argument(
        "--replication-factor",
        type=int,
        default=None,
        help="override the file's replication factor (e.g. 3 on a 3-broker cluster)",
    )
    KafkaSettings.add_arguments(parser, only={"bootstrap"})


def _run(args: argparse.Namespace, work: Callable[[AIOKafkaAdminClient], Awaitable[T]]) -> T:
    settings = KafkaSettings.from_args(args)

    async def go() -> T:
        await probes.kafka_ready(settings)
        admin = make_admin(settings)
        try:
            await admin.start()
        except KafkaConnectionError:
            await admin.close()
            raise BrokerUnavailable(
                f"no Kafka broker answers at {settings.bootstrap} (FLEET_KAFKA_BOOTSTRAP)"
            ) from None
        try:
            return await work(admin)
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka at {settings.bootstrap}: {exc}") from None
        finally:
            await admin.close()

    return asyncio.run(go())


def _specs(args: argparse.Namespace) -> list[topics.TopicSpec]:
    if args.replication_factor is not None and args.replication_factor < 1:
        raise ConfigError(f"--replication-factor={args.replication_factor}: expected a positive integer")
    return topics.load_topics(args.file, args.replication_factor)


def cmd_apply(args: argparse.Namespace) -> int:
    """Create what is missing; print one line per topic."""
    specs = _specs(args)
    result = _run(args, lambda admin: topics.apply(admin, specs, dry_run=args.dry_run))
    verb = "would create" if args.dry_run else "created"
    for spec in result.create:
        print(f"{verb:12} {spec.name} partitions={spec.partitions} replication={spec.replication_factor}")
    for spec in result.present:
        print(f"{'ok':12} {spec.name} partitions={spec.partitions}")
    if result.changes_nothing:
        print(f"topics: nothing to do, {len(result.present)} already present")
    else:
        dry = " (dry run)" if args.dry_run else ""
        print(f"topics: {verb} {len(result.create)}, {len(result.present)} already present{dry}")
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    """The file's topics beside what the broker has."""
    specs = _specs(args)
    existing = _run(args, lambda admin: topics.existing_partitions(admin))
    table = Table(title=f"topics ({args.file.name} vs broker)", title_justify="left")
    for column in ("topic", "file partitions", "broker partitions", "state"):
        table.add_column(column)
    for spec in specs:
        actual = existing.get(spec.name)
        state = "missing" if actual is None else ("ok" if actual == spec.partitions else "[red]MISMATCH[/]")
        table.add_row(spec.name, str(spec.partitions), "-" if actual is None else str(actual), state)
    for name in sorted(set(existing) - {s.name for s in specs}):
        table.add_row(name, "-", str(existing[name]), "[dim]not in file[/]")
    Console().print(table)
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """Partitions, replication and configs of each topic."""
    names = args.names or [s.name for s in _specs(args)]
    infos = _run(args, lambda admin: topics.describe(admin, names))
    found = {i.name for i in infos}
    table = Table(title="topics on the broker", title_justify="left")
    for column in ("topic", "partitions", "replication", "config"):
        table.add_column(column)
    for info in infos:
        config = ", ".join(f"{k}={v}" for k, v in sorted(info.config.items())) or "-"
        table.add_row(info.name, str(info.partitions), str(info.replication_factor), config)
    Console().print(table)
    missing = [n for n in names if n not in found]
    if missing:
        print(f"fleet topics describe: not on the broker: {', '.join(missing)}")
        return 1
    return 0


def cmd_locate(args: argparse.Namespace) -> int:
    """Which partition of each topic holds a key (what every Java-compatible producer computes)."""
    specs = _specs(args)
    for spec in specs:
        partition = partition_for(args.key.encode(), spec.partitions)
        print(f"{spec.name:26} partition {partition} of {spec.partitions}")
    return 0
