"""`fleet demo`: the whole pipeline on one machine, watched live, then asked questions.

    demo = Demo(DemoSettings.from_env(), stack, sim, lake_dir, watcher)
    await run_until_signalled(demo)   # start: brokers + bridge + hot + cold; wait: the phases below
    demo.report                       # what the CLI prints at the end

The phases of `wait()`:

1. **simulate**: the fleet simulator (in this process) publishes for `seconds` of wall time
   while the view shows each stage's counters and rates (scraped from the /metrics endpoints
   once a second) and the alerts as they are raised.
2. **catch up**: the simulator is stopped (its last PUBACKs awaited). The pipeline has caught
   up when, on one scrape, every stage has seen what the stage before it handed on

       bridge.received >= published and bridge.in_flight == 0
       hot.frames + hot.skipped >= bridge.produced           (every telemetry record evaluated)
       cold.consumed >= bridge.produced + hot.alerts         (every telemetry and alert record read)

   and no counter has moved for `settle_s` (a late alert, e.g. a staleness timer, would move
   one). `>=` because at-least-once delivery may count a redelivered record twice.
3. **flush**: the cold writer gets SIGTERM, flushes every buffer into the lake and commits.
   Then the lake is counted with DuckDB: it must hold a row for every record the bridge
   produced and every alert hot sent.
4. **report**: the remaining children stop; the CLI prints the fuel leaderboard and the
   health summary read from the lake.

Everything here is pure or driven through injected objects, so the rules (rates, caught-up)
are unit-tested without brokers.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from services.common.errors import BrokerUnavailable, ConfigError, StackError
from services.common.settings import Settings, env
from services.stack.launcher import Stack
from services.stack.pipeline import MetricsEndpoints, metric_sum, metrics_values

log = logging.getLogger(__name__)

Phase = Literal["starting", "simulating", "catching up", "flushing", "querying", "done", "interrupted"]


@dataclasses.dataclass(frozen=True)
class DemoSettings(Settings):
    """What `fleet demo` simulates and how it decides the pipeline has caught up."""

    cars: int = env("FLEET_DEMO_CARS", 100, "simulated cars")
    seconds: float = env("FLEET_DEMO_SECONDS", 90.0, "wall seconds the simulator publishes")
    speedup: float = env("FLEET_DEMO_SPEEDUP", 10.0, "vehicle seconds per wall second")
    seed: int = env("FLEET_DEMO_SEED", 1, "simulator seed: same seed, same cars and faults")
    fault_rate: float = env("FLEET_DEMO_FAULT_RATE", 6.0, "faults per car per hour of vehicle time")
    bad_rate: float = env(
        "FLEET_DEMO_BAD_RATE", 0.001, "share of extra malformed messages (they go to the dead-letter topic)"
    )
    settle_s: float = env(
        "FLEET_DEMO_SETTLE_S",
        5.0,
        "caught up: every stage has seen everything and nothing moved this long (s)",
    )
    catchup_timeout_s: float = env(
        "FLEET_DEMO_CATCHUP_TIMEOUT_S", 120.0, "give up waiting for the pipeline to catch up after this (s)"
    )
    top: int = env("FLEET_DEMO_TOP", 10, "rows of the leaderboard and the health summary printed")

    def validate(self) -> None:
        """Ranges a demo can run with."""
        checks = [
            (self.cars >= 1, f"FLEET_DEMO_CARS={self.cars}: expected >= 1"),
            (self.seconds > 0, f"FLEET_DEMO_SECONDS={self.seconds}: expected > 0"),
            (self.speedup > 0, f"FLEET_DEMO_SPEEDUP={self.speedup}: expected > 0"),
            (self.fault_rate >= 0, f"FLEET_DEMO_FAULT_RATE={self.fault_rate}: expected >= 0"),
            (0 <= self.bad_rate <= 1, f"FLEET_DEMO_BAD_RATE={self.bad_rate}: expected 0..1"),
            (self.settle_s > 0, f"FLEET_DEMO_SETTLE_S={self.settle_s}: expected > 0"),
            (
                self.catchup_timeout_s > 0,
                f"FLEET_DEMO_CATCHUP_TIMEOUT_S={self.catchup_timeout_s}: expected > 0",
            ),
            (self.top >= 1, f"FLEET_DEMO_TOP={self.top}: expected >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def vehicle_s(self) -> float:
        """Vehicle time simulated when the simulator keeps pace."""
        return self.seconds * self.speedup


# --- counters ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Every stage's counters at one moment (None: that stage's endpoint did not answer)."""

    t: float  # monotonic seconds
    published: int
    bridge: Mapping[str, float] | None
    hot: Mapping[str, float] | None
    cold: Mapping[str, float] | None

    def counters(self) -> dict[str, float | None]:
        """The counters the view and the catch-up rule use, by stable name."""
        b, h, c = self.bridge, self.hot, self.cold

        def get(values: Mapping[str, float] | None, name: str) -> float | None:
            return None if values is None else metric_sum(values, name)

        return {
            "published": float(self.published),
            "bridge_received": get(b, "fleet_bridge_received_total"),
            "bridge_produced": get(b, "fleet_bridge_produced_total"),
            "bridge_deadlettered": get(b, "fleet_bridge_deadlettered_total"),
            "bridge_in_flight": get(b, "fleet_bridge_in_flight"),
            "hot_frames": get(h, "fleet_hot_frames_total"),
            "hot_skipped": get(h, "fleet_hot_skipped_total"),
            "hot_alerts": get(h, "fleet_hot_alerts_total"),
            "cold_consumed": get(c, "fleet_cold_consumed_total"),
            "cold_rows": get(c, "fleet_cold_rows_written_total"),
            "cold_buffered": get(c, "fleet_cold_buffered_records"),
        }


# Counters that only grow, and so have a rate (gauges such as in_flight do not).
RATED = (
    "published",
    "bridge_received",
    "bridge_produced",
    "bridge_deadlettered",
    "hot_frames",
    "hot_alerts",
    "cold_consumed",
    "cold_rows",
)


def rates(old: Snapshot | None, new: Snapshot) -> dict[str, float | None]:
    """Per second between two snapshots; None where either value is unknown or no time passed.

    A counter that went down (its service restarted) has no rate for that interval."""
    out: dict[str, float | None] = {name: None for name in RATED}
    if old is None:
        return out
    dt_s = new.t - old.t
    if dt_s <= 0:
        return out
    before, after = old.counters(), new.counters()
    for name in RATED:
        a, b = before[name], after[name]
        if a is not None and b is not None and b >= a:
            out[name] = (b - a) / dt_s
    return out


@dataclasses.dataclass(frozen=True)
class Verdict:
    """Whether the pipeline has caught up, and if not, what it still waits for."""

    caught_up: bool
    waiting: tuple[str, ...]


def behind(snapshot: Snapshot) -> list[str]:
    """What each stage has not yet seen of what the stage before it handed on (empty: nothing)."""
    c = snapshot.counters()
    reasons = []
    for stage, key in (("bridge", "bridge_received"), ("hot", "hot_frames"), ("cold", "cold_consumed")):
        if c[key] is None:
            reasons.append(f"{stage}: /metrics not answering")
    if reasons:
        return reasons
    published, received = c["published"] or 0, c["bridge_received"] or 0
    produced, in_flight = c["bridge_produced"] or 0, c["bridge_in_flight"] or 0
    evaluated = (c["hot_frames"] or 0) + (c["hot_skipped"] or 0)
    alerts, consumed = c["hot_alerts"] or 0, c["cold_consumed"] or 0
    if received < published:
        reasons.append(f"bridge: {published - received:,.0f} published messages not read yet")
    if in_flight > 0:
        reasons.append(f"bridge: {in_flight:,.0f} in flight")
    if evaluated < produced:
        reasons.append(f"hot: {produced - evaluated:,.0f} frames to evaluate")
    if consumed < produced + alerts:
        reasons.append(f"cold: {produced + alerts - consumed:,.0f} records to read")
    return reasons


class CatchUp:
    """Feed it snapshots; it says when every stage has seen everything and `settle_s` passed quietly."""

    def __init__(self, settle_s: float):
        self.settle_s = settle_s
        self._last: dict[str, float | None] | None = None
        self._quiet_since: float | None = None

    def observe(self, snapshot: Snapshot) -> Verdict:
        """The verdict after this snapshot."""
        counters = {k: v for k, v in snapshot.counters().items() if k != "bridge_in_flight"}
        if counters != self._last:
            self._last = counters
            self._quiet_since = snapshot.t
        reasons = behind(snapshot)
        assert self._quiet_since is not None
        quiet = snapshot.t - self._quiet_since
        if quiet < self.settle_s:
            reasons.append(f"counters moved {quiet:.1f} s ago (waiting for {self.settle_s:g} s of quiet)")
        return Verdict(not reasons, tuple(reasons))


# --- the view's rows ---------------------------------------------------------------------------

# (stage, what, counter key): the rows of the throughput table, in pipeline order.
STAGE_ROWS: tuple[tuple[str, str, str], ...] = (
    ("simulator", "published", "published"),
    ("bridge", "received", "bridge_received"),
    ("bridge", "produced", "bridge_produced"),
    ("bridge", "dead-lettered", "bridge_deadlettered"),
    ("hot", "frames evaluated", "hot_frames"),
    ("hot", "alerts sent", "hot_alerts"),
    ("cold", "records read", "cold_consumed"),
    ("cold", "rows in the lake", "cold_rows"),
)


def fmt_count(value: float | None) -> str:
    """`12,345`, or `-` when unknown."""
    return "-" if value is None else f"{value:,.0f}"


def fmt_rate(value: float | None) -> str:
    """`1,234/s`, or blank when unknown."""
    return "" if value is None else f"{value:,.0f}/s"


def stage_rows(snapshot: Snapshot, per_s: Mapping[str, float | None]) -> list[tuple[str, str, str, str]]:
    """(stage, counter, total, rate) per row of the throughput table; the stage name only on its first row."""
    counters = snapshot.counters()
    rows = []
    previous = ""
    for stage, what, key in STAGE_ROWS:
        rows.append(
            (stage if stage != previous else "", what, fmt_count(counters[key]), fmt_rate(per_s.get(key)))
        )
        previous = stage
    return rows


# --- the run -----------------------------------------------------------------------------------


class Simulator(Protocol):
    """What the demo needs of `simulators.simulation.Simulation`."""

    async def wait(self) -> None:
        """Publish until the duration is simulated or stop() is called."""

    async def stop(self) -> None:
        """Stop publishing, await the outstanding acknowledgements; safe twice."""

    def published(self) -> int:
        """Messages handed to MQTT so far on topics the bridge subscribes to."""

    def driven_s(self) -> float:
        """Vehicle time simulated so far (s)."""


class Watcher(Protocol):
    """The alert tail (`services.cli.alerts.AlertWatcher`): a Service."""

    async def start(self) -> None:
        """Connect and seek."""

    async def wait(self) -> None:
        """Consume until stopped."""

    async def stop(self) -> None:
        """Close; safe twice."""


@dataclasses.dataclass
class LakeCount:
    """Rows the lake holds after the cold writer flushed."""

    frames: int
    alerts: int


@dataclasses.dataclass
class Report:
    """What the demo did, for the final summary."""

    wall_s: float = 0.0
    simulated_s: float = 0.0  # wall
    driven_s: float = 0.0  # vehicle time
    catchup_s: float = 0.0
    caught_up: bool = False
    waiting: tuple[str, ...] = ()
    final: Snapshot | None = None
    cold_exit: int | None = None
    lake: LakeCount | None = None


class Demo:
    """Brokers and services up, simulate, catch up, flush the lake; a Service for run_until_signalled."""

    def __init__(
        self,
        settings: DemoSettings,
        stack: Stack,
        endpoints: MetricsEndpoints,
        make_simulator: Callable[[], Simulator],
        watcher: Watcher | None = None,
        *,
        count_lake: LakeCounter | None = None,
        history: int = 10,
    ):
        self.settings = settings
        self.stack = stack
        self.endpoints = endpoints
        self.make_simulator = make_simulator  # called in a thread once Mosquitto answers (it connects)
        self.simulator: Simulator | None = None
        self.watcher = watcher
        self.count_lake = count_lake
        self.phase: Phase = "starting"
        self.started_at = time.monotonic()
        self.phase_started = self.started_at
        self.snapshots: collections.deque[Snapshot] = collections.deque(maxlen=history)
        self.verdict = Verdict(False, ())
        self.report = Report()
        self.interrupted_in: Phase = "starting"  # the phase a signal (or a failure) cut short
        self._tasks: list[asyncio.Task[None]] = []
        self._stopped = False

    # --- Service --------------------------------------------------------------------------------
    async def start(self) -> None:
        """Brokers, topics, bridge, hot, cold (each answering), then the alert tail."""
        await self.stack.start()
        self.simulator = await asyncio.to_thread(self.make_simulator)
        if self.watcher is not None:
            await self.watcher.start()
            self._tasks.append(asyncio.ensure_future(self.watcher.wait()))

    async def wait(self) -> None:
        """The phases of the module docstring; returns when the lake is flushed and counted."""
        stack_died = asyncio.ensure_future(self.stack.wait())
        try:
            await self._guarded(self._simulate(), stack_died)
            await self._guarded(self._catch_up(), stack_died)
        finally:
            stack_died.cancel()
        await self._flush()
        self._enter("done")

    async def stop(self) -> None:
        """Stop the simulator, the alert tail and every child; safe twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.phase != "done":
            self.interrupted_in = self.phase
            self.phase = "interrupted"
        for task in self._tasks:
            task.cancel()
        try:
            if self.simulator is not None:
                await self.simulator.stop()
        finally:
            try:
                if self.watcher is not None:
                    await self.watcher.stop()
            finally:
                await self.stack.stop()

    # --- phases ----------------------------------------------------------------------------------
    def _enter(self, phase: Phase) -> None:
        self.phase = phase
        self.phase_started = time.monotonic()
        log.info("demo phase", extra={"phase": phase})

    async def _guarded(self, step: Coroutine[Any, Any, None], stack_died: asyncio.Future[None]) -> None:
        """Run `step` unless a child dies first (then its ProcessDied raises)."""
        task = asyncio.ensure_future(step)
        try:
            await asyncio.wait({task, stack_died}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if stack_died.done():
            stack_died.result()  # raises ProcessDied naming the child and its log
        task.result()

    async def _simulate(self) -> None:
        assert self.simulator is not None, "start() first"
        self._enter("simulating")
        t0 = time.monotonic()
        sampler = asyncio.ensure_future(self._sample_forever())
        running = asyncio.ensure_future(self.simulator.wait())
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(running), self.settings.seconds)
        finally:
            await self.simulator.stop()  # stops stepping, awaits PUBACKs, writes labels
            for task in (running, sampler):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not running.cancelled():
            running.result()  # a simulator failure (e.g. MQTT refused) raises here
        self.report.simulated_s = time.monotonic() - t0
        self.report.driven_s = self.simulator.driven_s()

    async def _catch_up(self) -> None:
        self._enter("catching up")
        t0 = time.monotonic()
        rule = CatchUp(self.settings.settle_s)
        deadline = t0 + self.settings.catchup_timeout_s
        while True:
            snapshot = await self.sample()
            self.verdict = rule.observe(snapshot)
            if self.verdict.caught_up or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        self.report.catchup_s = time.monotonic() - t0
        self.report.caught_up = self.verdict.caught_up
        self.report.waiting = self.verdict.waiting
        self.report.final = self.snapshots[-1]
        if not self.verdict.caught_up:
            log.warning("not caught up in time", extra={"waiting": "; ".join(self.verdict.waiting)})

    async def _flush(self) -> None:
        self._enter("flushing")
        self.report.cold_exit = await self.stack.stop_child("cold")
        if self.report.cold_exit != 0:
            raise StackError(
                f"the cold writer exited with code {self.report.cold_exit} on SIGTERM "
                f"(log: {self.stack.settings.log_dir / 'cold.log'}): its last buffers may be missing"
            )
        self._enter("querying")
        if self.count_lake is not None:
            self.report.lake = await asyncio.to_thread(self.count_lake)
        self.report.wall_s = time.monotonic() - self.started_at

    # --- sampling ----------------------------------------------------------------------------------
    async def sample(self) -> Snapshot:
        """Scrape the three endpoints at once; remember the snapshot."""

        async def one(name: str) -> Mapping[str, float] | None:
            try:
                return await metrics_values(getattr(self.endpoints, name), within_s=2.0)
            except BrokerUnavailable:
                return None

        bridge, hot, cold = await asyncio.gather(one("bridge"), one("hot"), one("cold"))
        published = self.simulator.published() if self.simulator is not None else 0
        snapshot = Snapshot(time.monotonic(), published, bridge, hot, cold)
        self.snapshots.append(snapshot)
        return snapshot

    async def _sample_forever(self, every_s: float = 1.0) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(every_s)

    def latest(self) -> tuple[Snapshot | None, dict[str, float | None]]:
        """The newest snapshot and rates over the last few seconds (smoother than one interval)."""
        if not self.snapshots:
            return None, {}
        new = self.snapshots[-1]
        old = next((s for s in self.snapshots if new.t - s.t <= 3.5), None)
        return new, rates(old if old is not new else None, new)


class LakeCounter(Protocol):
    """Counts the lake's rows (run in a thread)."""

    def __call__(self) -> LakeCount:
        """Telemetry rows over every subsystem, and alert rows."""


def count_lake_rows(lake_dir: Path, subsystems: Sequence[str]) -> LakeCount:
    """Rows per view of the lake, read with DuckDB through the query layer."""
    from services.query.lake import Lake  # deferred: duckdb is only needed once the run is over

    lake = Lake(lake_dir, threads=2)
    try:
        frames = 0
        for view in subsystems:
            frames += int(lake.execute(f"SELECT count(*) FROM {view}").rows[0][0])
        alerts = int(lake.execute("SELECT count(*) FROM alerts").rows[0][0])
    finally:
        lake.close()
    return LakeCount(frames, alerts)
