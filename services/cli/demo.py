"""`fleet demo` (what `make run` runs): the whole pipeline, watched live, then asked questions.

    fleet demo                                   # 100 cars, 90 s at 10x, faults and a few bad messages
    fleet demo --cars 10 --seconds 15            # a short one
    FLEET_STACK_DIR=/tmp/d FLEET_STACK_MQTT_PORT=... fleet demo   # beside another stack

The phases and what "caught up" means are in services/stack/demo.py.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from paho.mqtt.client import topic_matches_sub
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from schemas.catalog import SUBSYSTEMS
from services.bridge.settings import BridgeSettings
from services.cli.alerts import SEVERITY_STYLE, AlertWatcher
from services.common.lifecycle import EXIT_INTERRUPTED, run_until_signalled
from services.common.logging import configure_logging
from services.common.settings import LakeSettings, LogSettings
from services.hot.watch import EVENT_COLUMNS, AlertBoard, AlertsSettings, event_row
from services.stack.demo import Demo, DemoSettings, Report, count_lake_rows, fmt_count, stage_rows
from services.stack.launcher import Stack
from services.stack.pipeline import (
    add_lake_dir_argument,
    configured_endpoints,
    pipeline_services,
    set_lake_aside,
)
from services.stack.settings import StackSettings
from simulators.publisher import FrameSink, MqttSink
from simulators.simulation import Simulation, SimulatorSettings

EVENTS_SHOWN = 12
PLAIN_EVERY_S = 5.0  # progress lines when stdout is not a terminal


def register(verbs: Any) -> None:
    """Add `fleet demo`."""
    parser = verbs.add_parser(
        "demo",
        help="run the whole pipeline on simulated cars, watch it live, then query the lake (make run)",
        description=(
            "Starts Mosquitto, Tansu, bridge, hot and cold; simulates cars with faults for --seconds "
            "while showing each stage's throughput and the alerts; waits until every stage has caught "
            "up, stops the cold writer so it flushes, and prints the fuel leaderboard and the health "
            "summary from the lake. Ctrl-C stops everything at any point."
        ),
    )
    DemoSettings.add_arguments(parser)
    StackSettings.add_arguments(parser)
    add_lake_dir_argument(parser)
    LogSettings.add_arguments(parser)
    parser.set_defaults(func=cmd_demo)


class CountingSink:
    """A FrameSink that counts the messages the bridge subscribes to (some malformed ones go to
    topics outside its filter, e.g. `cars/<vin>/engine`: nothing reads those)."""

    def __init__(self, sink: FrameSink, topic_filter: str):
        self.sink = sink
        self.topic_filter = topic_filter
        self.for_bridge = 0

    def publish(self, topic: str, payload: bytes) -> None:
        if topic_matches_sub(self.topic_filter, topic):
            self.for_bridge += 1
        self.sink.publish(topic, payload)

    def congested(self) -> bool:
        return self.sink.congested()

    def pending(self) -> int:
        return self.sink.pending()

    def close(self, within_s: float) -> int:
        return self.sink.close(within_s)


class _SimulationAdapter:
    """`Simulation` as the demo's Simulator: what it published for the bridge."""

    def __init__(self, sim: Simulation, sink: CountingSink):
        self.sim = sim
        self.sink = sink

    async def wait(self) -> None:
        await self.sim.wait()

    async def stop(self) -> None:
        await self.sim.stop()

    def published(self) -> int:
        return self.sink.for_bridge

    def driven_s(self) -> float:
        return self.sim.progress.vehicle_s


def cmd_demo(args: argparse.Namespace) -> int:
    """Wire settings into a Demo, run it under a live view, print the summary."""
    settings = DemoSettings.from_args(args)
    stack_settings = StackSettings.from_args(args)
    lake = LakeSettings.from_env(dir=args.lake_dir)
    level = LogSettings.from_args(args).level
    configure_logging(level)
    if level != "DEBUG":
        # The view shows what matters; INFO lines from the launcher and aiokafka would scroll it away.
        logging.getLogger().setLevel(logging.WARNING)
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    endpoints = configured_endpoints()
    console = Console(soft_wrap=True)  # long lines (paths, commands) stay whole when piped
    live_console = Console()

    def prepare() -> None:
        # Tansu's topics live in memory: offsets start at 0 again, and the cold writer resumes each
        # partition after the offsets its lake holds, so an old lake would hide the new records.
        moved = set_lake_aside(lake.dir)
        if moved is not None:
            console.print(f"kept the previous lake as {moved} (the embedded broker starts empty)")

    sim_settings = SimulatorSettings(
        cars=settings.cars,
        duration=settings.vehicle_s,
        speedup=settings.speedup,
        seed=settings.seed,
        fault_rate=settings.fault_rate,
        bad_rate=settings.bad_rate,
        out_dir=stack_settings.dir / "sim",
    )
    stack = Stack(stack_settings, pipeline_services(stack_settings, endpoints, lake.dir), prepare=prepare)

    topic_filter = BridgeSettings.from_env().topic_filter

    def make_simulator() -> _SimulationAdapter:
        mqtt = MqttSink(stack.mqtt, qos=1, connections=2, client_prefix=f"fleet-demo-{os.getpid()}")
        sink = CountingSink(mqtt, topic_filter)
        return _SimulationAdapter(Simulation(sim_settings, sink), sink)

    board = AlertBoard(events=EVENTS_SHOWN)
    warnings: list[str] = []
    watcher = AlertWatcher(
        stack.kafka,
        AlertsSettings.from_env().topic,
        board,
        from_beginning=True,  # a new broker: everything in the topic is this run's
        on_event=lambda _alert: None,
        on_warning=warnings.append,
    )
    demo = Demo(
        settings,
        stack,
        endpoints,
        make_simulator,
        watcher,
        count_lake=lambda: count_lake_rows(lake.dir, [str(s) for s in SUBSYSTEMS]),
    )
    console.print(
        f"fleet demo: {settings.cars} cars for {settings.seconds:g} s at {settings.speedup:g}x "
        f"({settings.vehicle_s / 60:.0f} min of driving), faults {settings.fault_rate:g}/car-hour; "
        "Ctrl-C stops everything"
    )
    if live_console.is_terminal:
        signalled = asyncio.run(_run_live(demo, board, warnings, live_console))
    else:
        signalled = asyncio.run(_run_plain(demo, board))
    if signalled:
        console.print(f"fleet demo: interrupted while {demo.interrupted_in}; every process is stopped")
        return EXIT_INTERRUPTED
    return _summary(console, demo.report, settings, lake.dir, stack_settings, sim_settings.out_dir)


# --- the live view -------------------------------------------------------------------------------


def throughput_table(demo: Demo) -> Table:
    """Per stage: counters and rates per second."""
    table = Table(title="throughput", title_justify="left", expand=False)
    for column, justify in (("stage", "left"), ("counter", "left"), ("total", "right"), ("rate", "right")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    snapshot, per_s = demo.latest()
    if snapshot is not None:
        for row in stage_rows(snapshot, per_s):
            table.add_row(*row)
    return table


def alerts_panel(board: AlertBoard) -> Panel:
    """The last alerts raised, escalated or cleared (newest at the bottom)."""
    events = Table(expand=True, box=None, pad_edge=False)
    for column in EVENT_COLUMNS:
        events.add_column(column)
    for alert in board.recent:
        style = "dim" if alert.status == "cleared" else SEVERITY_STYLE[alert.severity]
        events.add_row(*(Text(cell) for cell in event_row(alert)), style=style)
    opened = len(board.open_alerts())
    return Panel(
        events, title=f"alerts.health: {opened} open, last {EVENTS_SHOWN} events", title_align="left"
    )


def status_line(demo: Demo, now: float) -> Text:
    """Phase, time in it, and what the catch-up still waits for."""
    s = demo.settings
    in_phase = now - demo.phase_started
    text = Text(f"{demo.phase}", style="bold")
    if demo.phase == "simulating":
        text.append(f"  {in_phase:.0f} / {s.seconds:g} s")
    elif demo.phase == "catching up":
        text.append(f"  {in_phase:.0f} s  ")
        text.append("; ".join(demo.verdict.waiting) or "checking", style="dim")
    else:
        text.append(f"  {in_phase:.0f} s")
    return text


def view(demo: Demo, board: AlertBoard, warnings: list[str] | None = None) -> RenderableType:
    """Everything the live view shows (the alert tail's last warning, e.g. the broker not answering)."""
    parts: list[RenderableType] = [status_line(demo, time.monotonic())]
    if warnings:
        parts.append(Text(warnings[-1], style="yellow"))
    return Group(*parts, throughput_table(demo), alerts_panel(board))


async def _run_live(demo: Demo, board: AlertBoard, warnings: list[str], console: Console) -> bool:
    with Live(view(demo, board, warnings), console=console, auto_refresh=False, transient=False) as live:

        async def redraw() -> None:
            while True:
                live.update(view(demo, board, warnings), refresh=True)
                await asyncio.sleep(0.5)

        ticker = asyncio.ensure_future(redraw())
        try:
            return await _run(demo)
        finally:
            ticker.cancel()
            live.update(view(demo, board, warnings), refresh=True)


async def _run_plain(demo: Demo, board: AlertBoard) -> bool:
    """No terminal: one progress line every few seconds, and each alert event as it comes."""

    async def lines() -> None:
        shown = 0
        while True:
            await asyncio.sleep(PLAIN_EVERY_S)
            snapshot, per_s = demo.latest()
            counters = snapshot.counters() if snapshot is not None else {}
            parts = [f"{demo.phase} {time.monotonic() - demo.phase_started:.0f}s"]
            for key in ("published", "bridge_produced", "hot_frames", "hot_alerts", "cold_consumed"):
                parts.append(f"{key}={fmt_count(counters.get(key))}")
            if demo.phase == "catching up" and demo.verdict.waiting:
                parts.append("waiting: " + "; ".join(demo.verdict.waiting))
            print("fleet demo: " + " ".join(parts), flush=True)
            events = list(board.recent)
            new = board.counts["shown"] - shown
            for alert in events[-new:] if 0 < new <= len(events) else ():
                print("  alert " + " ".join(event_row(alert)), flush=True)
            shown = board.counts["shown"]

    ticker = asyncio.ensure_future(lines())
    try:
        return await _run(demo)
    finally:
        ticker.cancel()


async def _run(demo: Demo) -> bool:
    return await run_until_signalled(demo)


# --- the summary ---------------------------------------------------------------------------------


def lake_check(report: Report) -> tuple[bool, str]:
    """Does the lake hold a row for every record produced? (ok, one line)."""
    final, lake = report.final, report.lake
    if final is None or lake is None:
        return False, "the lake was not counted"
    c = final.counters()
    produced, alerts = int(c["bridge_produced"] or 0), int(c["hot_alerts"] or 0)
    ok = lake.frames >= produced and lake.alerts >= alerts
    mark = "=" if (lake.frames, lake.alerts) == (produced, alerts) else (">=" if ok else "<")
    return ok, (
        f"lake: {lake.frames:,} frames and {lake.alerts:,} alert records {mark} "
        f"{produced:,} produced by the bridge and {alerts:,} sent by hot"
    )


def _print_top(console: Console, title: str, result: Any, top: int, command: str) -> None:
    from services.query.output import write_result

    console.print(f"\n[bold]{title}[/]")
    if not result.rows:
        console.print(f"  (no rows: try `{command}`)")
        return
    shown = dataclasses.replace(result, rows=result.rows[:top])
    write_result(shown, "table", sys.stdout)
    if len(result.rows) > top:
        console.print(f"[dim]first {top} of {len(result.rows)}: `{command}` shows all[/]")


def _summary(
    console: Console,
    report: Report,
    settings: DemoSettings,
    lake_dir: Path,
    stack: StackSettings,
    sim_dir: Path,
) -> int:
    from services.query.filters import Filters
    from services.query.lake import Lake
    from services.query.queries import run_query
    from services.query.settings import QuerySettings

    final = report.final
    c = final.counters() if final is not None else {}
    console.print(
        f"\nfleet demo: published {fmt_count(c.get('published'))} messages in {report.simulated_s:.0f} s "
        f"({report.driven_s / 60:.1f} min of driving); "
        f"bridge produced {fmt_count(c.get('bridge_produced'))}, "
        f"dead-lettered {fmt_count(c.get('bridge_deadlettered'))}; "
        f"hot evaluated {fmt_count(c.get('hot_frames'))} frames, "
        f"sent {fmt_count(c.get('hot_alerts'))} alerts; "
        f"cold read {fmt_count(c.get('cold_consumed'))} records"
    )
    if report.caught_up:
        console.print(f"caught up {report.catchup_s:.1f} s after the simulator stopped")
    else:
        console.print(
            f"[yellow]not caught up after {report.catchup_s:.0f} s[/] "
            f"({'; '.join(report.waiting)}): the lake may miss the last records"
        )
    ok, line = lake_check(report)
    console.print(("" if ok else "[red]") + line + ("" if ok else "[/]"))

    query_settings = QuerySettings.from_env()
    lake = Lake(lake_dir, threads=query_settings.threads)
    try:
        board = run_query(lake, "leaderboard", Filters(), query_settings)
        health = run_query(lake, "health", Filters(), query_settings)
    finally:
        lake.close()
    _print_top(
        console,
        "fuel efficiency (rank 1 = least fuel per km)",
        board,
        settings.top,
        "fleet query leaderboard",
    )
    _print_top(console, "health: alert episodes per car", health, settings.top, "fleet query health")

    elsewhere = lake_dir != LakeSettings().dir
    console.print(
        f"\nthe lake: {lake_dir.resolve()} (Parquet; read-only DuckDB views)\n"
        f"ground truth of the run: {sim_dir}/labels.jsonl (faults), {sim_dir}/fleet.json (true L/100 km)\n"
        f"logs: {stack.log_dir}/\n"
        "try next (the lake stays; the brokers are stopped):\n"
        + (f"  export FLEET_LAKE_DIR={lake_dir}     # fleet query reads this lake\n" if elsewhere else "")
        + "  fleet query leaderboard            # every car; --format csv|json, --chart fuel.png\n"
        "  fleet query health                 # or: trips, idle, by-road, open-alerts, freshness\n"
        "  fleet query shell                  # your own SQL over engine, chassis, ..., alerts\n"
        "  fleet up                           # the same pipeline until Ctrl-C; then, in other shells:\n"
        "    fleet simulate --cars 50 --speedup 10 --fault-rate 6 --duration 0\n"
        "    fleet alerts --from-beginning    # the alert stream, live\n"
        "    fleet status                     # each part's health, rates and consumer lag"
    )
    console.print("everything is stopped")
    return 0 if ok and report.caught_up else 1
