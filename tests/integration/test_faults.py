"""Fault injection under load: the whole pipeline loses nothing, duplicates nothing, heals itself.

Each case starts its own bridge + hot + cold (private topics, groups, lake) on the session's
Mosquitto and Tansu, runs a seeded `fleet simulate` (30 cars x 5 subsystems at 5x real time,
QoS1, faults drawn at 30 per car-hour: 18,240 frames over 25 s) and, 8 s in, breaks one thing:

1. the bridge is killed (-9), with messages in flight, and restarted;
2. the hot worker is killed (-9) two seconds after a car fell silent, and restarted;
3. the cold writer is killed (-9) right after a flush, and restarted;
4. Mosquitto is restarted (SIGTERM, as an operator would);
5. the Kafka broker is frozen for 10 s (SIGSTOP / SIGCONT of Tansu);
6. the lake's disk fills until the cold writer's flushes fail, then is freed (see `LakeDisk`).

After the simulator ends and the pipeline drains, every case checks (pipeline_support.finish):
every published (vin, subsystem, seq) is in the lake, read with DuckDB (the published set comes
from the same seeded model, stepped in this process); `fleet lake audit` is clean; no duplicate
row in the lake by (vin, subsystem, seq) (and none by Kafka offset); one `raised` record per
alert_id on the alert topic, no episode raised twice under two ids, and every simulator fault
(labels.jsonl) decidable within the run raised; every service alive, answering /metrics, its
work counter moving again after the fault (no restart but the one the case does).

A summary table ends the module, written through pytest's terminal reporter (shown with or
without -s) and to .fleet/faults-summary.txt. Run with `make test-faults`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.integration.conftest import restart_child
from tests.integration.pipeline_support import (
    LakeDisk,
    Load,
    Pipeline,
    Recovery,
    Row,
    Service,
    finish,
    model,
    table,
)

LOAD = Load(cars=30, seconds=125, speedup=5.0, seed=7, fault_rate=30.0)
FAULT_AT_S = 8.0  # into the simulation (40 s of vehicle time): the first alert episodes are near

# A fault breaks something, repairs it (or restarts it), and returns who was restarted and
# what it measured (shown under the summary table).
Fault = Callable[[Pipeline], Awaitable[tuple[frozenset[str], str]]]
Check = Callable[[Pipeline, Row], Awaitable[None]]


@pytest.fixture(scope="module")
def summary(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """Rows of the module's cases; the table is printed and saved when the module ends."""
    rows: list[Row] = []
    started = time.monotonic()
    yield rows
    text = table(rows) + f"\n{len(rows)} cases in {time.monotonic() - started:.0f} s (cases + teardown)"
    out = Path(request.config.rootpath) / ".fleet" / "faults-summary.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
    plugins = request.config.pluginmanager
    reporter, capture = plugins.get_plugin("terminalreporter"), plugins.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with (
            capture.global_and_fixture_disabled()
        ):  # a teardown's output is captured: shown with or without -s
            reporter.write_line("")
            reporter.write_sep("=", "fault-injection summary")
            for line in text.splitlines():
                reporter.write_line(line)
            reporter.write_line(f"(saved to {out})")


@pytest.fixture
async def pipelines(stack, fleet_env, names, tmp_path, admin):  # type: ignore[no-untyped-def]
    """Factory of started pipelines; all stopped afterwards."""
    made: list[Pipeline] = []

    async def make(lake: Path | None = None, cold_preexec: Callable[[], None] | None = None) -> Pipeline:
        pipeline = Pipeline(stack, fleet_env, names, tmp_path, lake or tmp_path / "lake", cold_preexec)
        made.append(pipeline)
        await pipeline.create_topics(admin)
        await pipeline.start()
        return pipeline

    yield make
    for pipeline in made:
        await pipeline.stop()


async def run_case(
    case: str, pipeline: Pipeline, summary: list[Row], fault: Fault, check: Check | None = None
) -> None:
    """Load, fault at FAULT_AT_S, drain, check; the row goes into the summary whatever happens."""
    row = Row(case)
    started = time.monotonic()
    sim = pipeline.start_simulator(LOAD)
    recovery = Recovery(pipeline)
    try:
        await asyncio.sleep(FAULT_AT_S)
        assert sim.poll() is None, f"the simulator ended before the fault: {pipeline.sim_log.read_text()}"
        restarted, row.note = await fault(pipeline)
        await recovery.fault_over(restarted)
        await finish(pipeline, sim, LOAD, recovery, row)
        if check is not None:
            await check(pipeline, row)
    except BaseException as exc:
        row.failures.append(f"{type(exc).__name__}: {exc}")
        raise
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.wait(10)
        row.seconds = time.monotonic() - started
        summary.append(row)
    assert not row.failures, "\n".join(row.failures)


async def when(service: Service, ready: Callable[[dict[str, float]], bool], within_s: float) -> float | None:
    """Poll `service`'s metrics every 20 ms until `ready(metrics)`; seconds waited (None: never)."""
    started = time.monotonic()
    while time.monotonic() - started < within_s:
        with contextlib.suppress(OSError):
            if ready(await service.metrics()):
                return time.monotonic() - started
        await asyncio.sleep(0.02)
    return None


async def kill_bridge_with_messages_in_flight(pipeline: Pipeline) -> tuple[frozenset[str], str]:
    """kill -9 while the bridge holds messages Kafka may have and Mosquitto has no PUBACK for."""
    bridge = pipeline.bridge
    waited = await when(bridge, lambda m: m.get("fleet_bridge_in_flight", 0) > 0, within_s=5)
    bridge.kill()
    bridge.start()
    return frozenset({"bridge"}), f"killed {'with' if waited is not None else 'without'} messages in flight"


async def kill_hot_while_a_car_is_silent(pipeline: Pipeline) -> tuple[frozenset[str], str]:
    """kill -9 two wall seconds after a car's telematics unit fell silent (the seeded model says
    which car and when): its last frames are processed and committed, its silence (3 s) is not
    reported yet. The restarted worker must still report it."""
    hot = pipeline.hot
    silences = [(vin, t) for vin, t in model(LOAD).silences if t + 30 < LOAD.seconds]
    if not silences:
        hot.kill()
        hot.start()
        return frozenset({"hot"}), "killed (no car fell silent in this run)"
    vin, second = silences[0]
    target = model(LOAD).frames_through[second + round(2 * LOAD.speedup)]
    waited = await when(hot, lambda m: m.get("fleet_hot_frames_total", 0) >= target, within_s=20)
    hot.kill()
    hot.start()
    how = (
        f"2 s after {vin} fell silent (vehicle second {second})" if waited is not None else "(timing missed)"
    )
    return frozenset({"hot"}), f"killed {how}"


async def kill_cold_right_after_a_flush(pipeline: Pipeline) -> tuple[frozenset[str], str]:
    """kill -9 just after a flush renamed its files: the commit may not have happened."""
    cold = pipeline.cold
    base = (await cold.metrics())["fleet_cold_files_written_total"]
    waited = await when(cold, lambda m: m["fleet_cold_files_written_total"] > base, within_s=5)
    m = await cold.metrics()
    cold.kill()
    cold.start()
    how = "within 20 ms of a flush" if waited is not None else "(no flush within 5 s)"
    return frozenset({"cold"}), f"killed {how}, {m['fleet_cold_buffered_records']:.0f} records buffered"


async def restart_mosquitto(pipeline: Pipeline) -> tuple[frozenset[str], str]:
    started = time.monotonic()
    await restart_child(pipeline.stack, "mosquitto")
    return frozenset(), f"stopped (SIGTERM) and answering again in {time.monotonic() - started:.1f} s"


async def pause_kafka(pipeline: Pipeline) -> tuple[frozenset[str], str]:
    tansu = next(c for c in pipeline.stack.children if c.name == "tansu")
    os.kill(tansu.pid, signal.SIGSTOP)
    try:
        await asyncio.sleep(10)
        during = await pipeline.bridge.metrics()
    finally:
        os.kill(tansu.pid, signal.SIGCONT)
    return (
        frozenset(),
        f"bridge held {during['fleet_bridge_in_flight']:.0f} messages in flight at the end of the pause",
    )


async def test_bridge_kill_9_and_restart(pipelines, summary):  # type: ignore[no-untyped-def]
    await run_case("bridge kill -9", await pipelines(), summary, kill_bridge_with_messages_in_flight)


async def test_hot_worker_kill_9_and_restart(pipelines, summary):  # type: ignore[no-untyped-def]
    await run_case("hot kill -9", await pipelines(), summary, kill_hot_while_a_car_is_silent)


async def test_cold_writer_kill_9_and_restart(pipelines, summary):  # type: ignore[no-untyped-def]
    await run_case("cold kill -9", await pipelines(), summary, kill_cold_right_after_a_flush)


async def test_mosquitto_restart(pipelines, summary):  # type: ignore[no-untyped-def]
    await run_case("mosquitto restart", await pipelines(), summary, restart_mosquitto)


async def test_kafka_broker_paused_10_s(pipelines, summary):  # type: ignore[no-untyped-def]
    await run_case("kafka paused 10 s", await pipelines(), summary, pause_kafka)


async def test_lake_disk_full_then_freed(pipelines, summary, tmp_path):  # type: ignore[no-untyped-def]
    disk = LakeDisk(tmp_path / "lake")
    mode = disk.setup()
    seen: dict[str, float] = {}

    async def fill_until_writes_fail(pipeline: Pipeline) -> tuple[frozenset[str], str]:
        cold = pipeline.cold
        assert cold.proc is not None
        before = await cold.metrics()
        disk.fill(cold.proc.pid)
        deadline = time.monotonic() + 20
        m = before
        while m["fleet_cold_flush_errors_total"] == before["fleet_cold_flush_errors_total"]:
            assert time.monotonic() < deadline, (
                f"no flush failed in 20 s with the disk full: {cold.log_tail()}"
            )
            await asyncio.sleep(0.2)
            m = await cold.metrics()
        await asyncio.sleep(3)  # full for a while: retries fail too, buffers grow, fetching pauses
        m = await cold.metrics()
        seen.update(
            errors=m["fleet_cold_flush_errors_total"],
            paused=m["fleet_cold_paused_partitions"],
            rows=m["fleet_cold_rows_written_total"],
        )
        disk.free(cold.proc.pid)
        full = f"ballast {disk.ballast_bytes >> 20} MiB" if disk.mode == "tmpfs" else "RLIMIT_FSIZE 1 KiB"
        return frozenset(), (
            f"{full}; {seen['errors']:.0f} failed flushes, {seen['paused']:.0f} partitions paused, then freed"
        )

    async def writes_resumed(pipeline: Pipeline, row: Row) -> None:
        m = await pipeline.cold.metrics()
        if seen.get("paused", 0) == 0:
            row.failures.append(f"the cold writer did not pause fetching while its flushes failed: {seen}")
        if m["fleet_cold_rows_written_total"] <= seen.get("rows", 0):
            row.failures.append(f"no row written after the disk was freed: {seen} -> {m}")
        if list(pipeline.lake.rglob(".*.w.tmp")):
            row.failures.append(
                f"failed flushes left temp files: {[p.name for p in pipeline.lake.rglob('.*.w.tmp')][:3]}"
            )

    pipeline = await pipelines(lake=disk.lake, cold_preexec=disk.preexec())
    try:
        await run_case(f"lake disk full ({mode})", pipeline, summary, fill_until_writes_fail, writes_resumed)
    finally:
        await pipeline.stop()  # before the unmount
        disk.teardown()
