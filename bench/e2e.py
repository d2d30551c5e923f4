"""`fleet bench e2e`: the largest fleet the whole pipeline sustains here, then 10 minutes of it.

Method (one private Mosquitto + Tansu, `fleet bridge`, `fleet hot` and `fleet cold` as child
processes, the simulator in this process publishing QoS1 at 1 Hz x 5 subsystems per car):
- Trials: fleets of growing size run for `trial_s` each on a fresh stack; then the largest one
  that is *sustained* runs for `run_s` (600 s by default), and if it does not hold for that
  long, the next smaller sustained size does, until one holds (the others are reported).
- Sustained means, over the run: the simulator kept vehicle time with the wall clock (>= 97%:
  its QoS1 window stalls when the broker or the bridge falls behind), the lag of every stage
  (frames published - frames the stage has handled, in seconds of traffic) stayed under
  `MAX_LAG_S` in the second half, every stage caught up within `MAX_DRAIN_S` after the last
  frame, and memory stayed bounded: the bridge and hot grew by at most 25% (+64 MiB) between a
  third of the run and its end, cold grew by at most its buffer budget
  (FLEET_COLD_MEMORY_BUDGET_BYTES, 512 MiB) + 25% + 64 MiB over its size at the start (it
  buffers up to FLEET_COLD_FLUSH_SPAN_S of records by design; the budget counts the buffered
  records, and a flush needs working memory on top: the partition's values joined once more and
  its Arrow columns), and
  Tansu is reported, not judged: its in-memory storage keeps every record (no retention).
- Lag is counted from the services' /metrics (bridge produced, hot frames, cold consumed), not
  from Kafka offsets: Tansu's end offsets under-report batched records (see README quirks).
- CPU per component: utime + stime from /proc over the run, as a share of one core.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.bridge import start_system, stop_system
from bench.results import result, write_results
from services.common.metrics import parse_text, scrape
from services.common.probes import free_ports
from services.stack.launcher import Stack
from services.stack.settings import StackSettings
from simulators.publisher import MqttSink
from simulators.simulation import Simulation, SimulatorSettings

FLEET_BIN = str(Path(sys.executable).parent / "fleet")
SUBSYSTEMS_PER_CAR = 5
MAX_LAG_S = 10.0
MAX_DRAIN_S = 60.0
SAMPLE_S = 5.0
COLD_BUDGET_MIB = 512  # FLEET_COLD_MEMORY_BUDGET_BYTES' default
CLK_TCK = os.sysconf("SC_CLK_TCK")

# stage -> (service, counter of frames it has handled)
STAGES = {
    "bridge": ("bridge", "fleet_bridge_produced_total"),
    "hot": ("hot", "fleet_hot_frames_total"),
    "cold": ("cold", "fleet_cold_consumed_total"),
}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class Sample:
    """One look at the pipeline."""

    t: float  # seconds since the simulator started
    published: int
    handled: dict[str, float]  # stage -> frames handled
    rss: dict[str, float]  # component -> MiB


@dataclass
class Trial:
    """What one fleet size did."""

    cars: int
    seconds: float
    samples: list[Sample] = field(default_factory=list)
    vehicle_s: float = 0.0
    wall_s: float = 0.0
    drain_s: float | None = None
    cpu: dict[str, float] = field(default_factory=dict)  # component -> share of one core

    def lag_s(self, sample: Sample, stage: str) -> float:
        rate = self.cars * SUBSYSTEMS_PER_CAR
        return max(0.0, (sample.published - sample.handled.get(stage, 0.0)) / rate)

    def memory_bounded(self, growth: dict[str, float]) -> bool:
        """Bridge and hot grow by at most 25% + 64 MiB; cold by its buffer budget + 25% + 64 MiB."""
        if len(self.samples) < 3:
            return False
        first, last = self.samples[0], self.samples[-1]
        third = next(s for s in self.samples if s.t >= self.seconds / 3)
        steady = all(growth.get(n, 0.0) <= 0.25 * third.rss.get(n, 0.0) + 64 for n in ("bridge", "hot"))
        cold_bound = first.rss.get("cold", 0.0) + 1.25 * COLD_BUDGET_MIB + 64
        return steady and last.rss.get("cold", 0.0) <= cold_bound

    def verdict(self) -> dict[str, Any]:
        """Whether the fleet was sustained, and why not."""
        late = [s for s in self.samples if s.t >= self.seconds / 2]
        max_lag = {stage: max((self.lag_s(s, stage) for s in late), default=0.0) for stage in STAGES}
        third = next((s for s in self.samples if s.t >= self.seconds / 3), None)
        last = self.samples[-1] if self.samples else None
        growth = {}
        if third and last:
            for name in last.rss:
                growth[name] = round(last.rss[name] - third.rss.get(name, last.rss[name]), 1)
        memory_ok = self.memory_bounded(growth)
        pace = self.vehicle_s / max(1e-9, self.wall_s)
        reasons = []
        if pace < 0.97:
            reasons.append(f"simulator kept {pace:.0%} of real time")
        reasons += [f"{st} lag {lag:.1f} s" for st, lag in max_lag.items() if lag > MAX_LAG_S]
        if self.drain_s is None:
            reasons.append(f"not caught up {MAX_DRAIN_S:.0f} s after the last frame")
        if not memory_ok:
            reasons.append(f"memory grew {growth}")
        return {
            "cars": self.cars,
            "sustained": not reasons,
            "why_not": reasons,
            "pace": round(pace, 3),
            "max_lag_s_second_half": {k: round(v, 2) for k, v in max_lag.items()},
            "drain_s": None if self.drain_s is None else round(self.drain_s, 1),
            "rss_mib_end": {k: round(v, 1) for k, v in (last.rss if last else {}).items()},
            "rss_growth_mib": growth,
            "cpu_share_of_one_core": {k: round(v, 3) for k, v in self.cpu.items()},
            "frames": last.published if last else 0,
            "seconds": self.seconds,
        }


async def handled(ports: dict[str, int], before: dict[str, float] | None = None) -> dict[str, float]:
    """Frames each stage has handled so far; a stage not answering keeps its count from `before`
    (0 without it): its lag then grows while it is silent, instead of jumping to the whole run."""
    out = {}
    for stage, (service, counter) in STAGES.items():
        try:
            out[stage] = parse_text(await scrape("127.0.0.1", ports[service], within_s=2)).get(counter, 0.0)
        except OSError:
            out[stage] = (before or {}).get(stage, 0.0)
    return out


def service_env(stack: Stack, tmp: Path, ports: dict[str, int]) -> dict[str, str]:
    """One environment for the three services (each reads its own FLEET_<SERVICE>_*)."""
    s = stack.settings
    return {
        "FLEET_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "FLEET_MQTT_HOST": s.host,
        "FLEET_MQTT_PORT": str(s.mqtt_port),
        "FLEET_LOG_LEVEL": "WARNING",
        "FLEET_BRIDGE_CLIENT_ID": "bench-e2e-bridge",
        "FLEET_BRIDGE_METRICS_PORT": str(ports["bridge"]),
        "FLEET_HOT_DATADIR": str(tmp / "hot"),
        "FLEET_HOT_METRICS_PORT": str(ports["hot"]),
        "FLEET_LAKE_DIR": str(tmp / "lake"),
        "FLEET_COLD_METRICS_PORT": str(ports["cold"]),
    }


async def run_fleet(tmp: Path, cars: int, seconds: float) -> Trial:
    """One fleet size on a fresh stack and fresh services."""
    mqtt_port, kafka_port, *service_ports = free_ports(5)
    ports = dict(zip(("bridge", "hot", "cold"), service_ports, strict=True))
    stack = Stack(StackSettings(dir=tmp / "stack", mqtt_port=mqtt_port, kafka_port=kafka_port))
    await stack.start()
    procs = {}
    trial = Trial(cars, seconds)
    try:
        env = service_env(stack, tmp, ports)
        for name in ("bridge", "hot", "cold"):
            procs[name] = start_system([FLEET_BIN, name], env, tmp / f"{name}.log")
        await wait_ready(ports, procs, tmp)
        pids = {name: p.pid for name, p in procs.items()}
        pids.update({r.name: r.pid for r in stack.records})
        cpu0 = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self0 = self_cpu_seconds()
        settings = SimulatorSettings(
            cars=cars, duration=seconds, speedup=1.0, qos=1, fault_rate=2.0, seed=11, out_dir=tmp / "sim"
        )
        sink = MqttSink(stack.mqtt, qos=1, connections=2, client_prefix="bench-e2e")
        sim = Simulation(settings, sink)
        started = time.monotonic()
        running = asyncio.ensure_future(sim.wait())
        while not running.done():
            await asyncio.wait([running], timeout=SAMPLE_S)
            trial.samples.append(
                Sample(
                    time.monotonic() - started,
                    sim.progress.frames,
                    await handled(ports, trial.samples[-1].handled if trial.samples else None),
                    {name: rss_mib(pid) for name, pid in pids.items()},
                )
            )
        await running
        trial.wall_s = time.monotonic() - started
        trial.vehicle_s = sim.progress.vehicle_s
        await sim.stop()
        elapsed = time.monotonic() - started
        trial.cpu = {name: (cpu_seconds(pid) - cpu0[name]) / elapsed for name, pid in pids.items()}
        trial.cpu["simulator (bench process)"] = (self_cpu_seconds() - self0) / elapsed
        trial.drain_s = await drain(ports, sim.progress.frames)
    finally:
        for proc in procs.values():
            stop_system(proc, grace_s=20)
        await stack.stop()
    return trial


async def wait_ready(ports: dict[str, int], procs: dict[str, Any], tmp: Path, within_s: float = 60) -> None:
    """Every metrics endpoint answers, then the hot and cold groups get a moment to join."""
    deadline = time.monotonic() + within_s
    for name, port in ports.items():
        while True:
            if procs[name].poll() is not None:
                raise RuntimeError(f"fleet {name} exited: see {tmp / (name + '.log')}")
            try:
                await scrape("127.0.0.1", port, within_s=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"fleet {name} has no /metrics after {within_s} s") from None
                await asyncio.sleep(0.3)
    await asyncio.sleep(8)  # group joins (Tansu holds a join ~3 s) and the Table's recovery


async def drain(ports: dict[str, int], published: int) -> float | None:
    """Seconds until every stage has handled `published` frames, None if not within MAX_DRAIN_S."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < MAX_DRAIN_S:
        if all(v >= published for v in (await handled(ports)).values()):
            return time.monotonic() - t0
        await asyncio.sleep(0.5)
    return None


async def search(tmp: Path, sizes: Sequence[int], trial_s: float) -> list[dict[str, Any]]:
    """Trials of growing size; stops after the first that is not sustained."""
    verdicts = []
    for cars in sizes:
        trial = await run_fleet(tmp / f"trial-{cars}", cars, trial_s)
        verdict = trial.verdict()
        verdicts.append(verdict)
        print(f"e2e trial {cars} cars: {json.dumps(verdict)}", flush=True)
        if not verdict["sustained"]:
            break
    return verdicts


async def run(tmp: Path, sizes: Sequence[int], trial_s: float, run_s: float) -> list[dict[str, Any]]:
    """Trials, then long runs from the largest size a trial sustained down, until one holds."""
    trials = await search(tmp, sizes, trial_s)
    candidates = sorted((v["cars"] for v in trials if v["sustained"]), reverse=True) or [sizes[0]]
    runs = []
    for cars in candidates:
        final = (await run_fleet(tmp / f"run-{cars}", cars, run_s)).verdict()
        runs.append(final)
        print(f"e2e run {cars} cars for {run_s:.0f} s: {json.dumps(final)}", flush=True)
        if final["sustained"]:
            break
    return [
        result(
            "e2e",
            f"cars sustained for {run_s / 60:g} min (1 Hz x 5 subsystems, QoS1, all services)",
            "cars",
            cars if final["sustained"] else 0,
            params={
                "run": final,
                "longer_runs_not_sustained": runs[:-1],
                "trials": trials,
                "criteria": {
                    "pace": ">= 97% of real time",
                    "max_lag_s": MAX_LAG_S,
                    "max_drain_s": MAX_DRAIN_S,
                    "memory": "bridge, hot: growth <= 25% + 64 MiB from 1/3 of the run to its end; "
                    "cold: growth <= its 512 MiB buffer budget + 25% + 64 MiB; "
                    "tansu (in-memory storage): reported only",
                },
                "goal": "2,000 cars",
            },
        ),
    ]


def main(quick: bool = False) -> Path:
    """Run and write bench/results/e2e.json (`quick`: short trials and a 60 s run)."""
    sizes, trial_s, run_s = ((100, 300), 30.0, 60.0) if quick else ((600, 800, 1000, 1400, 2000), 45.0, 600.0)
    with tempfile.TemporaryDirectory(prefix="fleet-bench-e2e-") as tmp:
        results = asyncio.run(run(Path(tmp), sizes, trial_s, run_s))
    return write_results("e2e", results)


if __name__ == "__main__":
    print(json.dumps(json.loads(main(quick=True).read_text()), indent=2))
