"""`fleet simulate` and `fleet schema export`."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from schemas.export import to_markdown, to_vss_json
from services.common.errors import ConfigError
from services.common.lifecycle import run_until_signalled
from services.common.logging import configure_logging
from services.common.settings import LogSettings, MqttSettings
from simulators.publisher import FrameSink, JsonlSink, MqttSink
from simulators.simulation import Simulation, SimulatorSettings


def register(verbs: Any) -> None:
    """Add `fleet simulate` and `fleet schema`."""
    sim = verbs.add_parser("simulate", help="drive simulated cars and publish their frames over MQTT")
    SimulatorSettings.add_arguments(sim)
    MqttSettings.add_arguments(sim, only={"host", "port", "username", "password", "tls_ca"})
    LogSettings.add_arguments(sim)
    sim.set_defaults(func=cmd_simulate)

    schema = verbs.add_parser("schema", help="the signal catalog")
    sub = schema.add_subparsers(dest="action", metavar="<action>", required=True)
    export = sub.add_parser("export", help="print the catalog as a Markdown table or VSS-style JSON")
    export.add_argument("--format", choices=("markdown", "vss-json"), default="markdown")
    export.set_defaults(func=cmd_schema_export)


def cmd_schema_export(args: argparse.Namespace) -> int:
    """Print the catalog."""
    sys.stdout.write(to_markdown() if args.format == "markdown" else to_vss_json())
    return 0


def _load_credentials(path: str) -> dict[str, str] | None:
    if not path:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(
            f"FLEET_SIM_CREDENTIALS={path}: cannot read a JSON {{vin: password}} file ({exc})"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ConfigError(f"FLEET_SIM_CREDENTIALS={path}: expected a JSON object {{vin: password}}")
    return data


def _view(sim: Simulation) -> Table:
    p = sim.progress
    table = Table(title="fleet simulate", title_justify="left")
    for column in ("cars", "vehicle time", "frames", "frames/s", "faults", "bad msgs", "unacked"):
        table.add_column(column, justify="right")
    table.add_row(
        str(sim.settings.cars),
        f"{p.vehicle_s:,.0f} s",
        f"{p.frames:,}",
        f"{p.frames_per_s:,.0f}",
        str(sim.fleet.faults_started()),
        f"{p.bad:,}",
        f"{sim.sink.pending():,}",
    )
    return table


def cmd_simulate(args: argparse.Namespace) -> int:
    """Run a simulation until its duration ends or Ctrl-C; write the ground truth either way."""
    settings = SimulatorSettings.from_args(args)
    configure_logging(LogSettings.from_args(args).level)
    settings.fleet_config()  # a bad scenario file fails here, before any connection opens
    sink: FrameSink
    if settings.out:
        sink = JsonlSink(Path(settings.out))
    else:
        mqtt = MqttSettings.from_args(args)
        sink = MqttSink(
            mqtt,
            qos=settings.qos,
            connections=settings.connections,
            client_prefix=f"fleet-sim-{os.getpid()}",
            credentials=_load_credentials(settings.credentials),
        )
    sim = Simulation(settings, sink)
    console = Console(stderr=True)

    async def run() -> bool:
        if not console.is_terminal:
            return await run_until_signalled(sim)
        with Live(_view(sim), console=console, refresh_per_second=4) as live:

            async def refresh() -> None:
                while True:
                    live.update(_view(sim))
                    await asyncio.sleep(0.25)

            ticker = asyncio.ensure_future(refresh())
            try:
                return await run_until_signalled(sim)
            finally:
                ticker.cancel()
                live.update(_view(sim))

    signalled = asyncio.run(run())
    p = sim.progress
    labels = len(sim.fleet.labels())
    console.print(
        f"simulated {settings.cars} cars for {p.vehicle_s:,.0f} s: {p.frames:,} frames, {p.bad:,} malformed, "
        f"{labels} faults -> {settings.out_dir}/labels.jsonl, {settings.out_dir}/fleet.json"
        + (" (stopped early)" if signalled else "")
    )
    return 0
