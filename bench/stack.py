"""`fleet bench stack`: local stack start-up time, and Faust join time (ours vs Faust defaults).

Start-up: `Stack.start()` on free ports until Mosquitto answers CONNECT, Tansu answers a
metadata request and the 7 topics exist. No peer: nothing else starts this stack.
Faust: seconds from a worker's start to its first processed record (cold), and from a
kill -9 + restart to the next processed record, with FAUST_GROUP_SETTINGS beside Faust's
default group timings, in the same run against the same broker.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from bench import faust_join
from bench.results import median, result, write_results
from services.common.kafka import FAUST_GROUP_SETTINGS
from services.common.probes import free_ports
from services.stack.launcher import Stack
from services.stack.settings import StackSettings


async def _startup(workdir: Path, repeats: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {}
    for i in range(repeats):
        mqtt_port, kafka_port = free_ports(2)
        settings = StackSettings(dir=workdir / f"start-{i}", mqtt_port=mqtt_port, kafka_port=kafka_port)
        stack = Stack(settings)
        await stack.start()
        await stack.stop()
        for part, took in stack.timings.items():
            samples.setdefault(part, []).append(took)
    return samples


async def _faust(workdir: Path, repeats: int, peer_restart: bool) -> dict[str, dict[str, list[float]]]:
    """Ours and the peer run at the same time, on one broker, in separate groups and topics."""
    mqtt_port, kafka_port = free_ports(2)
    settings = StackSettings(dir=workdir / "faust", mqtt_port=mqtt_port, kafka_port=kafka_port)
    stack = Stack(settings)
    await stack.start()
    out: dict[str, dict[str, list[float]]] = {"ours": {}, "peer": {}}
    try:
        for i in range(repeats):
            ours, peer = await asyncio.gather(
                faust_join.measure(stack.kafka, workdir, f"bench-ours-{i}", peer=False, within_s=120),
                faust_join.measure(
                    stack.kafka, workdir, f"bench-peer-{i}", peer=True, restart=peer_restart, within_s=240
                ),
                return_exceptions=True,
            )
            for side, timings in (("ours", ours), ("peer", peer)):
                if isinstance(timings, BaseException):
                    # A worker that does not process again in time is a result too; keep going.
                    out[side].setdefault("timeouts", []).append(1.0)
                    print(f"bench stack: {side} repeat {i}: {timings}")
                    continue
                for key, value in timings.items():
                    out[side].setdefault(key, []).append(value)
    finally:
        await stack.stop()
    return out


def main(quick: bool = False) -> Path:
    """Run the benchmark and write bench/results/stack.json."""
    start_repeats, faust_repeats = (3, 1) if quick else (10, 2)
    with tempfile.TemporaryDirectory(prefix="fleet-bench-stack-") as tmp:
        workdir = Path(tmp)
        startup = asyncio.run(_startup(workdir, start_repeats))
        faust = asyncio.run(_faust(workdir, faust_repeats, peer_restart=not quick))
    params = {"repeats": start_repeats, "statistic": "median"}
    results = [
        result(
            "stack",
            "start-up, all parts ready + topics",
            "s",
            median(startup["total"]),
            lower_is_better=True,
            params=params,
        ),
        result(
            "stack",
            "mosquitto ready (CONNACK)",
            "s",
            median(startup["mosquitto"]),
            lower_is_better=True,
            params=params,
        ),
        result(
            "stack",
            "tansu ready (metadata)",
            "s",
            median(startup["tansu"]),
            lower_is_better=True,
            params=params,
        ),
        result(
            "stack",
            "7 topics provisioned",
            "s",
            median(startup["topics"]),
            lower_is_better=True,
            params=params,
        ),
    ]
    fparams = {
        "repeats": faust_repeats,
        "statistic": "median",
        "ours": FAUST_GROUP_SETTINGS,
        "store": "memory://",
        "partitions": 6,
        "concurrent": "ours and peer run side by side",
    }
    fparams["timeouts"] = {side: len(faust[side].get("timeouts", [])) for side in ("ours", "peer")}
    if quick:
        fparams["note"] = "--quick skips the peer's kill -9 restart (it waits out a 60 s session)"
    for key, label in (
        ("cold_s", "faust worker start -> first record processed"),
        ("restart_after_kill_s", "faust kill -9 + restart -> next record processed"),
    ):
        peer_samples = faust["peer"].get(key)
        results.append(
            result(
                "stack",
                label,
                "s",
                median(faust["ours"][key]),
                peer=median(peer_samples) if peer_samples else None,
                peer_name="faust defaults (session 60 s, heartbeat 3 s, rebalance 60 s)",
                lower_is_better=True,
                params=fparams,
            )
        )
    return write_results("stack", results)
