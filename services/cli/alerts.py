"""`fleet alerts`: watch the alert topic live (open alerts + event stream), deduplicated and filtered.

    fleet alerts                                   # live view on a terminal, new records only
    fleet alerts --from-beginning --severity critical --json | jq .vin
    fleet alerts --from-beginning --json --idle-exit 2 --max 100   # for scripts: ends by itself

Reads every partition of the topic without a consumer group (nothing is committed, so a watcher
never moves anyone's offsets), folds the records into `services.hot.watch.AlertBoard` and shows
what it keeps. Only the Kafka protocol is used: Tansu and Apache Kafka alike.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaConnectionError, KafkaError
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from services.common import probes
from services.common.errors import BrokerUnavailable, TopicError
from services.common.kafka import LIVE_FETCH_WAIT_MS, make_admin, make_consumer
from services.common.lifecycle import run_until_signalled
from services.common.logging import configure_logging
from services.common.settings import KafkaSettings, LogSettings
from services.common.topics import existing_partitions
from services.hot.alerts import SEVERITIES, Alert
from services.hot.watch import (
    EVENT_COLUMNS,
    OPEN_COLUMNS,
    AlertBoard,
    AlertFilter,
    AlertsSettings,
    event_line,
    event_row,
    open_row,
    parse_record,
)

SEVERITY_STYLE = {"critical": "bold red", "warning": "yellow", "info": "cyan"}
EVENTS_SHOWN = 20
# While no record comes, ask the broker this often whether it is still there: aiokafka retries
# silently (we mute its per-retry errors), so a dead broker would look like a quiet topic.
HEALTH_CHECK_S = 5.0


def register(verbs: Any) -> None:
    """Add `fleet alerts`."""
    parser = verbs.add_parser(
        "alerts",
        help="watch the alert topic live: open alerts and the event stream, deduplicated",
        description=(
            "Watch the alert topic: a live view on a terminal, one plain line per event in a pipe, "
            "or one JSON alert per line with --json. Redelivered records (same alert_id and status) "
            "are shown once. Without a consumer group: watching commits no offsets."
        ),
    )
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="read the topic from its first record [default: only records written from now on]",
    )
    parser.add_argument(
        "--vin", action="append", default=[], metavar="VIN", help="only this car (repeat for several)"
    )
    parser.add_argument(
        "--severity",
        choices=SEVERITIES,
        default="info",
        help="minimum severity: warning shows warning and critical [default: info, everything]",
    )
    parser.add_argument(
        "--rule", action="append", default=[], metavar="RULE", help="only this rule (repeat for several)"
    )
    parser.add_argument(
        "--json", action="store_true", help="one JSON alert per line on stdout (for jq); no live view"
    )
    parser.add_argument(
        "--max", type=_positive_int, default=None, metavar="N", help="exit 0 after showing N records"
    )
    parser.add_argument(
        "--idle-exit",
        type=_positive_float,
        default=None,
        metavar="SECONDS",
        help="exit 0 once no record arrived for SECONDS (scripts, tests) [default: watch until Ctrl-C]",
    )
    AlertsSettings.add_arguments(parser)
    KafkaSettings.add_arguments(parser, only={"bootstrap"})
    LogSettings.add_arguments(parser)
    parser.set_defaults(func=cmd_alerts)


def _positive_int(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {raw!r}")
    return value


def _positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    if not value > 0:  # also rejects nan
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {raw!r}")
    return value


class AlertWatcher:
    """Reads all partitions of the alert topic into a board; a Service for `run_until_signalled`."""

    def __init__(
        self,
        kafka: KafkaSettings,
        topic: str,
        board: AlertBoard,
        *,
        from_beginning: bool,
        on_event: Callable[[Alert], None],
        on_warning: Callable[[str], None],
        max_records: int | None = None,
        idle_exit_s: float | None = None,
    ):
        self.kafka, self.topic, self.board = kafka, topic, board
        self.from_beginning = from_beginning
        self.on_event, self.on_warning = on_event, on_warning
        self.max_records, self.idle_exit_s = max_records, idle_exit_s
        self.shown = 0
        self.broker_down = False
        self.ended_by = ""  # "max", "idle" or "pipe" once wait() returned by itself
        self._consumer: AIOKafkaConsumer | None = None

    async def start(self) -> None:
        """Find the topic's partitions, assign them all, seek to the beginning or the end."""
        await probes.kafka_ready(self.kafka)  # one line within seconds when nothing answers
        count = await self._partition_count()
        consumer = make_consumer(
            self.kafka, group_id=None, role="alerts", fetch_max_wait_ms=LIVE_FETCH_WAIT_MS
        )
        self._consumer = consumer
        try:
            await consumer.start()
            # Manual assignment of what exists now: a partition added while watching is not
            # picked up until the next start (the design's topics never grow in place).
            partitions = [TopicPartition(self.topic, p) for p in range(count)]
            consumer.assign(partitions)
            if self.from_beginning:
                await consumer.seek_to_beginning(*partitions)
            else:
                # ListOffsets(latest). Tansu under-reports it when records were written in
                # batches, so a tail may start with a few older records: harmless for a watch.
                await consumer.seek_to_end(*partitions)
        except KafkaConnectionError:
            raise BrokerUnavailable(
                f"no Kafka broker answers at {self.kafka.bootstrap} (FLEET_KAFKA_BOOTSTRAP)"
            ) from None
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka at {self.kafka.bootstrap}: {exc}") from None

    async def _partition_count(self) -> int:
        # Through the admin client, listing before describing: a Metadata request naming a
        # missing topic would make Tansu (and Kafka with auto-create on) create it.
        admin = make_admin(self.kafka)
        try:
            await admin.start()
            found = await existing_partitions(admin, [self.topic])
        except KafkaError as exc:
            raise BrokerUnavailable(f"Kafka at {self.kafka.bootstrap}: {exc!r}") from None
        finally:
            await admin.close()
        if self.topic not in found:
            raise TopicError(
                f"topic {self.topic} does not exist at {self.kafka.bootstrap} "
                "(FLEET_ALERTS_TOPIC / --topic; provision it with `fleet topics apply`)"
            )
        return found[self.topic]

    async def wait(self) -> None:
        """Consume until --max or --idle-exit says stop (or stdout's reader went away)."""
        assert self._consumer is not None, "start() first"
        idle_since = checked = time.monotonic()
        while True:
            poll_s = 1.0
            if self.idle_exit_s is not None:
                poll_s = min(poll_s, max(0.05, self.idle_exit_s - (time.monotonic() - idle_since)))
            batches = await self._consumer.getmany(timeout_ms=int(poll_s * 1000))
            now = time.monotonic()
            if not batches:
                if self.idle_exit_s is not None and now - idle_since >= self.idle_exit_s:
                    self.ended_by = "idle"
                    return
                if now - checked >= HEALTH_CHECK_S:
                    await self._check_broker()
                    checked = time.monotonic()
                continue
            idle_since = checked = now
            if self.broker_down:
                self._broker_back()
            # Order only matters within a partition: an episode's records share its VIN key.
            for _tp, records in sorted(batches.items()):
                for record in records:
                    try:
                        self._handle(record)
                    except BrokenPipeError:  # `fleet alerts --json | head -3` is done reading
                        self.ended_by = "pipe"
                        return
                    if self.max_records is not None and self.shown >= self.max_records:
                        self.ended_by = "max"
                        return

    def _handle(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            alert = parse_record(record.value)
        except ValueError as exc:
            self.board.note_malformed()
            detail = " ".join(str(exc).split())[:200]
            self.on_warning(
                f"skipped a malformed record at {record.topic}[{record.partition}]@{record.offset}: {detail}"
            )
            return
        if self.board.apply(alert) == "shown":
            self.shown += 1
            self.on_event(alert)

    async def _check_broker(self) -> None:
        try:
            await probes.kafka_ready(self.kafka, within_s=2.0)
        except BrokerUnavailable as exc:
            if not self.broker_down:
                self.broker_down = True
                self.on_warning(f"{exc}; still watching, reading resumes when it answers")
            return
        if self.broker_down:
            self._broker_back()

    def _broker_back(self) -> None:
        self.broker_down = False
        self.on_warning(f"Kafka at {self.kafka.bootstrap} answers again")

    async def stop(self) -> None:
        """Close the consumer; safe twice (no group: nothing to commit or leave)."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            await consumer.stop()
        except asyncio.CancelledError:
            # aiokafka 0.14 lets the cancellation of a fetch it was retrying (broker gone) escape
            # from stop(); only a cancellation of this task itself may propagate.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise


def _write_json(alert: Alert) -> None:
    sys.stdout.write(alert.to_json().decode() + "\n")
    sys.stdout.flush()  # a `| jq` reader sees each alert as it comes


def _write_line(alert: Alert) -> None:
    print(event_line(alert), flush=True)


def _warn(message: str) -> None:
    print(f"fleet alerts: warning: {message}", file=sys.stderr, flush=True)


def _summary(board: AlertBoard) -> str:
    c = board.counts
    return (
        f"shown {c['shown']}, duplicates {c['duplicate']}, replays {c['stale']}, "
        f"filtered {c['filtered']}, malformed {c['malformed']}"
    )


def _view(board: AlertBoard, watcher: AlertWatcher, height: int) -> RenderableType:
    """The live view: a status line, the open alerts, the last events (newest at the bottom)."""
    opened = board.open_alerts()
    open_table = Table(expand=True, box=None, pad_edge=False)
    for column in OPEN_COLUMNS:
        open_table.add_column(column, overflow="fold" if column == "message" else "ellipsis")
    # Keep the events in sight on a short terminal: the panel shows what fits, then a count.
    room = max(3, height - len(board.recent) - 10)
    for alert in opened[:room]:
        cells = [Text(cell) for cell in open_row(alert)]
        cells[OPEN_COLUMNS.index("severity")].stylize(SEVERITY_STYLE[alert.severity])
        open_table.add_row(*cells)
    if len(opened) > room:
        open_table.add_row(Text(f"… and {len(opened) - room} more", style="dim"))

    events = Table(expand=True, box=None, pad_edge=False)
    for column in EVENT_COLUMNS:
        events.add_column(column)
    for alert in board.recent:
        style = "dim" if alert.status == "cleared" else SEVERITY_STYLE[alert.severity]
        events.add_row(*(Text(cell) for cell in event_row(alert)), style=style)

    mode = "from the beginning" if watcher.from_beginning else "tail"
    status = Text(f"fleet alerts  {watcher.topic} @ {watcher.kafka.bootstrap} ({mode})  {_summary(board)}")
    if watcher.broker_down:
        status.append("  broker not answering", style="bold red")
    return Group(
        status,
        Panel(open_table, title=f"open alerts ({len(opened)})", title_align="left"),
        Panel(events, title=f"events (last {board.recent.maxlen})", title_align="left"),
    )


async def _run_live(watcher: AlertWatcher, console: Console) -> bool:
    """Run the watcher under a rich Live view, redrawn from the event loop (the board is not thread-safe)."""
    board = watcher.board
    with Live(
        _view(board, watcher, console.height), console=console, auto_refresh=False, transient=False
    ) as live:

        async def redraw() -> None:
            drawn: tuple[int, int, bool] = (-1, -1, False)
            while True:
                now = (board.version, sum(board.counts.values()), watcher.broker_down)
                if now != drawn:
                    live.update(_view(board, watcher, console.height), refresh=True)
                    drawn = now
                await asyncio.sleep(0.25)

        ticker = asyncio.ensure_future(redraw())
        try:
            return await run_until_signalled(watcher)
        finally:
            ticker.cancel()
            live.update(_view(board, watcher, console.height), refresh=True)


def cmd_alerts(args: argparse.Namespace) -> int:
    """Watch until Ctrl-C, --max or --idle-exit; exit 0 then."""
    settings = AlertsSettings.from_args(args)
    kafka = KafkaSettings.from_args(args)
    configure_logging(LogSettings.from_args(args).level)
    # aiokafka logs an ERROR per reconnect attempt, which would scroll the live view away and
    # garble a pipe's stderr; the watcher reports an outage itself, once (HEALTH_CHECK_S).
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    board = AlertBoard(
        AlertFilter(vins=frozenset(args.vin), rules=frozenset(args.rule), min_severity=args.severity),
        events=EVENTS_SHOWN,
    )
    console = Console()
    live = not args.json and console.is_terminal
    on_event: Callable[[Alert], None] = _write_json if args.json else _write_line
    watcher = AlertWatcher(
        kafka,
        settings.topic,
        board,
        from_beginning=args.from_beginning,
        on_event=(lambda _alert: None) if live else on_event,
        on_warning=_warn,
        max_records=args.max,
        idle_exit_s=args.idle_exit,
    )
    if live:
        asyncio.run(_run_live(watcher, console))
    else:
        asyncio.run(run_until_signalled(watcher))
    if watcher.ended_by == "pipe":
        # Python would flush stdout again at exit and report the broken pipe: point it at /dev/null.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    elif not args.json:
        print(f"fleet alerts: {_summary(board)}", file=sys.stderr)
    return 0
