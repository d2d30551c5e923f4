"""`fleet up`, `fleet down`, `fleet status`: the local stack."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table

from services.common.lifecycle import run_until_signalled
from services.common.logging import configure_logging
from services.common.settings import LogSettings
from services.stack.launcher import Stack, stack_status, stop_recorded_stack
from services.stack.settings import StackSettings


def register(verbs: Any) -> None:
    """Add the stack verbs."""
    up = verbs.add_parser("up", help="start Mosquitto + Tansu, provision topics, run until Ctrl-C")
    StackSettings.add_arguments(up)
    LogSettings.add_arguments(up)
    up.set_defaults(func=cmd_up)

    down = verbs.add_parser("down", help="stop the stack started by 'fleet up' (from any shell)")
    StackSettings.add_arguments(down, only={"dir"})
    down.set_defaults(func=cmd_down)

    status = verbs.add_parser("status", help="show the running stack: processes and whether each answers")
    StackSettings.add_arguments(status, only={"dir"})
    status.set_defaults(func=cmd_status)


def cmd_up(args: argparse.Namespace) -> int:
    """Run the stack in the foreground until Ctrl-C or SIGTERM."""
    settings = StackSettings.from_args(args)
    configure_logging(LogSettings.from_args(args).level)
    stack = Stack(settings)
    console = Console(stderr=True)

    class Announced:
        async def start(self) -> None:
            await stack.start()
            console.print(_endpoints_table(stack))
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
    """Show each recorded process and whether it answers; exit 1 unless all are healthy."""
    settings = StackSettings.from_args(args)
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
            record.endpoint or "-",
            answer if answer != "no answer" else "[red]no answer[/]",
        )
    Console().print(table)
    return 0 if healthy else 1
