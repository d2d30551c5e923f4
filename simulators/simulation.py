"""`fleet simulate`: drive a Fleet in (scaled) real time and publish its frames.

The model (`Fleet`) is pure; this module adds the clock, the sink, bad frames, progress and
the ground-truth files (labels.jsonl, fleet.json) written when the run ends or is stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import random
import time
from pathlib import Path

from services.common.errors import ConfigError
from services.common.settings import Settings, env
from simulators.badframes import BAD_KINDS, make_bad
from simulators.faults import load_scenario
from simulators.fleet import Fleet, FleetConfig
from simulators.publisher import FrameSink

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SimulatorSettings(Settings):
    """What `fleet simulate` runs."""

    cars: int = env("FLEET_SIM_CARS", 10, "number of cars")
    duration: float = env(
        "FLEET_SIM_DURATION", 60.0, "seconds of vehicle time to simulate (0: until stopped)"
    )
    rate: float = env("FLEET_SIM_RATE", 1.0, "frames per second per car and subsystem (vehicle time)")
    speedup: float = env("FLEET_SIM_SPEEDUP", 1.0, "vehicle seconds per wall second (0: as fast as possible)")
    seed: int = env("FLEET_SIM_SEED", 1, "random seed: same seed, same frames")
    qos: int = env("FLEET_SIM_QOS", 1, "MQTT QoS (0 or 1)")
    fault_rate: float = env("FLEET_SIM_FAULT_RATE", 0.0, "faults per car per hour of vehicle time")
    scenario: str = env(
        "FLEET_SIM_SCENARIO", "", "scenario YAML scheduling faults (instead of or with the rate)"
    )
    bad_rate: float = env("FLEET_SIM_BAD_RATE", 0.0, "share of extra malformed messages per frame (0..1)")
    connections: int = env("FLEET_SIM_CONNECTIONS", 2, "MQTT connections in the pool")
    credentials: str = env("FLEET_SIM_CREDENTIALS", "", "JSON file {vin: password}: one connection per car")
    out: str = env("FLEET_SIM_OUT", "", "write frames to this JSONL file instead of MQTT")
    out_dir: Path = env("FLEET_SIM_OUT_DIR", Path(".fleet/sim"), "where labels.jsonl and fleet.json go")

    def validate(self) -> None:
        """Ranges a simulation can run with."""
        checks = [
            (self.cars >= 1, f"FLEET_SIM_CARS={self.cars}: expected >= 1"),
            (self.duration >= 0, f"FLEET_SIM_DURATION={self.duration}: expected >= 0"),
            (0 < self.rate <= 100, f"FLEET_SIM_RATE={self.rate}: expected 0 < rate <= 100"),
            (self.speedup >= 0, f"FLEET_SIM_SPEEDUP={self.speedup}: expected >= 0"),
            (self.qos in (0, 1), f"FLEET_SIM_QOS={self.qos}: expected 0 or 1"),
            (self.fault_rate >= 0, f"FLEET_SIM_FAULT_RATE={self.fault_rate}: expected >= 0"),
            (0 <= self.bad_rate <= 1, f"FLEET_SIM_BAD_RATE={self.bad_rate}: expected 0..1"),
            (self.connections >= 1, f"FLEET_SIM_CONNECTIONS={self.connections}: expected >= 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def fleet_config(self) -> FleetConfig:
        """The pure model's configuration."""
        scenario = load_scenario(Path(self.scenario)) if self.scenario else ()
        return FleetConfig(
            cars=self.cars,
            seed=self.seed,
            tick_s=1.0 / self.rate,
            fault_rate=self.fault_rate,
            scenario=scenario,
        )


@dataclasses.dataclass
class Progress:
    """Counters a live view shows."""

    ticks: int = 0
    frames: int = 0
    bad: int = 0
    vehicle_s: float = 0.0
    started: float = dataclasses.field(default_factory=time.monotonic)

    @property
    def frames_per_s(self) -> float:
        """Frames per wall second so far."""
        return self.frames / max(1e-9, time.monotonic() - self.started)


def encode(frame: dict[str, object]) -> bytes:
    """The wire form of a frame: compact JSON, keys in catalog order."""
    return json.dumps(frame, separators=(",", ":")).encode()


class Simulation:
    """Runs a fleet against a sink; `stop()` ends it early and still writes the ground truth."""

    def __init__(self, settings: SimulatorSettings, sink: FrameSink):
        self.settings = settings
        self.fleet = Fleet(settings.fleet_config())
        self.sink = sink
        self.progress = Progress()
        self._stop = asyncio.Event()
        self._bad_rng = random.Random(settings.seed ^ 0x5EED)
        self._done = False

    async def start(self) -> None:
        """Nothing to start: the sink connects when built."""

    async def wait(self) -> None:
        """Run until the duration is simulated or stop() is called."""
        s = self.settings
        tick_s = 1.0 / s.rate
        ticks = round(s.duration * s.rate) if s.duration > 0 else None
        wall0 = time.monotonic()
        n = 0
        while (ticks is None or n < ticks) and not self._stop.is_set():
            frames = self.fleet.step()
            n += 1
            self._publish(frames)
            # Backpressure: the broker is behind. PUBACKs arrive on paho's threads, so there is no
            # event to await; a short sleep keeps signals and the live view responsive.
            while self.sink.congested() and not self._stop.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.002)
            self.progress.ticks = n
            self.progress.vehicle_s = n * tick_s
            if s.speedup > 0:
                delay = wall0 + n * tick_s / s.speedup - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif n % 50 == 0:
                    await asyncio.sleep(0)  # let signals in when running behind
            elif n % 20 == 0:
                await asyncio.sleep(0)

    def _publish(self, frames: list[tuple[str, str, dict[str, object]]]) -> None:
        bad_rate = self.settings.bad_rate
        rng = self._bad_rng
        for vin, subsystem, frame in frames:
            self.sink.publish(f"fleet/{vin}/{subsystem}", encode(frame))
            if bad_rate and rng.random() < bad_rate:
                topic, payload, _reason = make_bad(rng.choice(BAD_KINDS), vin, subsystem, frame, rng)
                self.sink.publish(topic, payload)
                self.progress.bad += 1
        self.progress.frames += len(frames)

    async def stop(self) -> None:
        """Stop stepping, wait for acknowledgements, write labels.jsonl and fleet.json."""
        if self._done:
            return
        self._done = True
        self._stop.set()
        unconfirmed = await asyncio.to_thread(self.sink.close, 30.0)
        if unconfirmed:
            log.warning("messages never acknowledged", extra={"unconfirmed": unconfirmed})
        self.fleet.finish()
        write_ground_truth(self.fleet, self.settings.out_dir)


def write_ground_truth(fleet: Fleet, out_dir: Path) -> None:
    """labels.jsonl (one line per fault) and fleet.json (per car truth) into `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "labels.jsonl").open("w") as f:
        for label in fleet.labels():
            f.write(json.dumps(label, separators=(",", ":")) + "\n")
    (out_dir / "fleet.json").write_text(json.dumps(fleet.manifest(), indent=2) + "\n")
