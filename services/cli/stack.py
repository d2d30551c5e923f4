"""`fleet up`, `fleet down`, `fleet status`: the local stack."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

from rich.console import Console
from rich.table import Table

from services.common.errors import BrokerUnavailable, ConfigError
from services.common.lifecycle import run_until_signalled
from services.common.logging import configure_logging
from services.common.settings import KafkaSettings, LakeSettings, LogSettings
from services.stack.launcher import Stack, stack_status, stop_recorded_stack
from services.stack.pipeline import (
    Endpoint,
    UpSettings,
    add_lake_dir_argument,
    configured_endpoints,
    group_lag,
    pipeline_services,
    rate_rows,
    set_lake_aside,
    two_scrapes,
)
from services.stack.settings import StackSettings
from services.stack.state import ChildRecord

# Shown under `fleet status`'s lag lines: Tansu answers ListOffsets(latest) with less than the
# true end when records were written in batches (measured with the bridge's batches).
TANSU_LAG_NOTE = (
    "lag = end offset - committed offset per partition, summed. On the embedded Tansu the end offset "
    "under-reports for batched records, so the lag reads low (often 0); on Apache Kafka it is exact."
)


def register(verbs: Any) -> None:
    """Add the stack verbs."""
    up = verbs.add_parser(
        "up", help="start Mosquitto + Tansu, provision topics, run bridge, hot and cold until Ctrl-C"
    )
    UpSettings.add_arguments(up)
    StackSettings.add_arguments(up)
    add_lake_dir_argument(up)
    LogSettings.add_arguments(up)
    up.set_defaults(func=cmd_up)

    down = verbs.add_parser("down", help="stop the stack started by 'fleet up' (from any shell)")
    StackSettings.add_arguments(down, only={"dir"})
    down.set_defaults(func=cmd_down)

    status = verbs.add_parser(
        "status",
        help="show the running stack: processes, whether each answers, services' rates and consumer lag",
    )
    StackSettings.add_arguments(status, only={"dir"})
    status.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="SECONDS",
        help="seconds between the two scrapes the rates come from [default: 1.0]",
    )
    status.set_defaults(func=cmd_status)


def cmd_up(args: argparse.Namespace) -> int:
    """Run the stack in the foreground until Ctrl-C or SIGTERM."""
    settings = StackSettings.from_args(args)
    up = UpSettings.from_args(args)
    lake = LakeSettings.from_env(dir=args.lake_dir)
    configure_logging(LogSettings.from_args(args).level)
    console = Console(stderr=True)
    services = []
    if up.services:
        services = pipeline_services(settings, configured_endpoints(), lake.dir)

    def prepare() -> None:
        # Tansu's topics live in memory: offsets restart at 0, and the cold writer resumes each
        # partition after the offsets its lake holds, so an old lake would hide the new records.
        moved = set_lake_aside(lake.dir)
        if moved is not None:
            console.print(f"kept the previous lake as {moved} (the embedded broker starts empty)")

    stack = Stack(settings, services, prepare=prepare if up.services else None)

    class Announced:
        async def start(self) -> None:
            await stack.start()
            console.print(_endpoints_table(stack))
            if up.services:
                console.print(f"lake: {lake.dir} (fleet query reads it)")
            console.print(
                "[dim]Ctrl-C stops everything; 'fleet status' / 'fleet down' work from another shell.[/]"
            )

        async def stop(self) -> None:
            await stack.stop()

        async def wait(self) -> None:
            await stack.wait()

    signalled = asyncio.run(run_until_signalled(Announced()))
    console.print("stack stopped" + (" (signal)" if signalled else ""))
    return 0


def _endpoints_table(stack: Stack) -> Table:
    table = Table(title="fleet stack is up", title_justify="left")
    table.add_column("part")
    table.add_column("endpoint")
    table.add_column("ready in", justify="right")
    table.add_column("log")
    for record in stack.records:
        took = stack.timings.get(record.name)
        table.add_row(
            record.name,
            record.endpoint or "-",
            f"{took:.2f} s" if took is not None else "-",
            record.log,
        )
    table.add_row("topics", str(stack.settings.topics_file), f"{stack.timings.get('topics', 0):.2f} s", "")
    return table


def cmd_down(args: argparse.Namespace) -> int:
    """Stop the recorded stack; exit 1 when none runs."""
    settings = StackSettings.from_args(args)
    if not asyncio.run(stop_recorded_stack(settings)):
        print(f"fleet down: no stack recorded in {settings.state_file}")
        return 1
    print("stack stopped")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Each recorded process, whether it answers, services' rates and lag; exit 1 unless all are healthy."""
    settings = StackSettings.from_args(args)
    if not args.interval > 0:
        raise ConfigError(f"--interval {args.interval}: expected a positive number of seconds")
    # aiokafka logs each connection problem with a traceback; the lag line says it once.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    state, rows = asyncio.run(stack_status(settings))
    if state is None:
        print(f"fleet status: no stack recorded in {settings.state_file} ('fleet up' starts one)")
        return 1
    table = Table(
        title=f"fleet stack ({state.status}, since {state.started_at}, launcher pid {state.launcher_pid})",
        title_justify="left",
    )
    for column in ("part", "pid", "process", "endpoint", "protocol check"):
        table.add_column(column)
    healthy = True
    for record, alive, answer in rows:
        healthy &= alive and answer in ("answers", "-")
        table.add_row(
            record.name,
            str(record.pid),
            "running" if alive else "[red]gone[/]",
            record.endpoint.removeprefix("http://") or "-",
            answer if answer != "no answer" else "[red]no answer[/]",
        )
    console = Console(soft_wrap=True)
    console.print(table)
    services = [(r, Endpoint.from_url(r.endpoint)) for r, alive, _ in rows if alive]
    measured = [(r, e) for r, e in services if e is not None]
    if measured:
        console.print(asyncio.run(_rates_table(measured, args.interval)))
    names = {record.name for record, alive, _ in rows if alive}
    if names & {"hot", "cold"} and "kafka" in state.endpoints:
        for line in asyncio.run(_lag_lines(KafkaSettings(bootstrap=state.endpoints["kafka"]), names)):
            console.print(line)
        console.print(f"[dim]{TANSU_LAG_NOTE}[/]")
    return 0 if healthy else 1


async def _rates_table(services: list[tuple[ChildRecord, Endpoint]], interval_s: float) -> Table:
    """Per service: its counters, and their rates from two scrapes `interval_s` apart (all at once)."""

    async def one(record: ChildRecord, endpoint: Endpoint) -> list[tuple[str, str, str]]:
        try:
            first, second, took = await two_scrapes(endpoint, interval_s)
        except BrokerUnavailable:
            return [("[red]metrics not answering[/]", "", "")]
        return rate_rows(record.name, first, second, took)

    results = await asyncio.gather(*(one(r, e) for r, e in services))
    table = Table(title=f"services (rates over {interval_s:g} s)", title_justify="left")
    for column, justify in (("service", "left"), ("counter", "left"), ("total", "right"), ("rate", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for (record, _), counters in zip(services, results, strict=True):
        for n, (label, total, rate) in enumerate(counters):
            table.add_row(record.name if n == 0 else "", label, total, rate)
    return table


async def _lag_lines(kafka: KafkaSettings, names: set[str]) -> list[str]:
    """`lag fleet-hot: 1,234 records` per consumer group of a running service."""
    from services.cold.settings import ColdSettings
    from services.hot.settings import HotSettings

    hot, cold = HotSettings.from_env(), ColdSettings.from_env()
    telemetry = [t for t in cold.kinds if t != cold.alerts_topic]
    groups = []
    if "hot" in names:
        groups.append((hot.app_id, [t for t in telemetry if t.startswith(hot.topic_prefix)]))
    if "cold" in names:
        groups.append((cold.group_id, list(cold.kinds)))
    lines = []
    for group, topics in groups:
        try:
            lag = await group_lag(kafka, group, topics)
        except BrokerUnavailable as exc:
            lines.append(f"lag {group}: [red]unknown[/] ({exc})")
            continue
        shown = "nothing committed yet" if lag is None else f"{lag:,} records"
        lines.append(f"lag {group} (consumer group over {len(topics)} topics): {shown}")
    return lines
