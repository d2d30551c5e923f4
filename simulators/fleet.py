"""A seeded fleet of cars stepped in lock-step ticks; the model is pure (no I/O).

fleet = Fleet(FleetConfig(cars=50, seed=7, fault_rate=0.5))
for ts, frames in fleet.run(duration_s=60):      # frames: [(vin, subsystem, frame), ...]
    ...
fleet.labels()     # ground truth, one dict per injected fault
fleet.manifest()   # per car: class, driver style, route mix (the fuel ranking's truth)

Every fault starts on a car that is driving and free: no fault active, and at least
`FAULT_COOLDOWN_MS` (15 min of vehicle time) since its last repair, so every label is an alert
episode of its own (`Car.can_start_fault`). A fault drawn by rate simply skips a car that is not.
A scenario entry is a fault that must happen: it starts at `at_s` if its car can take it then,
else it waits and starts on the first tick the car can (parked, busy with another fault or
cooling down after one); its label's `start_ts` is when it actually started. Entries waiting for
one car start in scenario order, before any fault drawn by rate; an entry for a car index beyond
the fleet is ignored.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator, Sequence
from typing import Any

from simulators.drivers import DRIVER_STYLES, STYLES
from simulators.faults import FAULT_KINDS, ScenarioEntry
from simulators.routes import ROUTE_KINDS, RouteKind
from simulators.vehicle import Car, CarProfile
from simulators.vehicle import Frame as Frame  # (vin, subsystem, frame), re-exported

# A simulated fleet starts at a fixed vehicle time unless told otherwise, so seeds reproduce.
DEFAULT_START_TS = 1_795_000_000_000  # 2026-11-17T...Z
VIN_PREFIX = "1FLEET"

_ROUTE_PROFILES: tuple[dict[RouteKind, float], ...] = (
    {"urban": 0.8, "suburban": 0.15, "highway": 0.05},  # city courier
    {"urban": 0.3, "suburban": 0.5, "highway": 0.2},  # commuter
    {"urban": 0.1, "suburban": 0.2, "highway": 0.7},  # long distance
)
_CLASS_WEIGHTS = {"compact": 0.35, "midsize": 0.45, "suv": 0.2}


@dataclasses.dataclass(frozen=True)
class FleetConfig:
    """How many cars, how they are chosen, and how faults arrive."""

    cars: int = 10
    seed: int = 1
    tick_s: float = 1.0  # vehicle seconds per frame (1 Hz)
    fault_rate: float = 0.0  # faults per car per hour of vehicle time
    scenario: Sequence[ScenarioEntry] = ()
    start_ts: int = DEFAULT_START_TS


def vin_for(index: int) -> str:
    """A valid 17-character VIN (no I, O, Q) for fleet member `index`."""
    return f"{VIN_PREFIX}{index:011d}"


class Fleet:
    """All cars of a simulation, stepped together."""

    def __init__(self, config: FleetConfig):
        self.config = config
        rng = random.Random(config.seed)
        self.rng = rng
        self.cars: list[Car] = []
        for i in range(config.cars):
            profile = CarProfile(
                vin=vin_for(i),
                vehicle_class=rng.choices(list(_CLASS_WEIGHTS), list(_CLASS_WEIGHTS.values()))[0],
                driver=DRIVER_STYLES[rng.choice(STYLES)],
                route_weights=dict(rng.choice(_ROUTE_PROFILES)),
                trip_km=rng.uniform(5, 40),
                home=(round(rng.uniform(47.5, 48.5), 5), round(rng.uniform(10.5, 12.5), 5)),
                ambient_c=round(rng.uniform(-5, 30), 1),
            )
            self.cars.append(Car(profile, seed=rng.getrandbits(64), start_ts=config.start_ts))
        self.ts = config.start_ts
        self.elapsed_s = 0.0
        self._pending = sorted(config.scenario, key=lambda e: e.at_s)
        self._waiting: list[ScenarioEntry] = []  # due, but their car could not take a fault yet

    def step(self) -> list[Frame]:
        """Advance every car one tick; return the frames of the cars that are not silent."""
        cfg = self.config
        self.elapsed_s += cfg.tick_s
        self.ts = ts = cfg.start_ts + round(self.elapsed_s * 1000)
        self._start_scheduled(ts)
        by_rate = cfg.fault_rate > 0
        p = cfg.fault_rate * cfg.tick_s / 3600.0  # a driving car's chance of a fault this tick
        out: list[Frame] = []
        for car in self.cars:
            # Each car draws from its own rng, so deciding its fault just before its step draws the
            # same numbers as deciding every car's first.
            if by_rate and car.can_start_fault(ts) and car.rng.random() < p:
                car.start_fault(car.rng.choice(FAULT_KINDS), ts)
            car.step(cfg.tick_s, ts)
            if car.fault is not None:  # skipped for the healthy majority
                car.end_fault_if_due(ts)
                if car.silent:
                    continue
            out += car.frames()
        return out

    def _start_scheduled(self, ts: int) -> None:
        """Start the scenario's faults that are due and whose car is free (before any drawn by rate)."""
        pending, cars = self._pending, self.cars
        while pending and pending[0].at_s <= self.elapsed_s:
            entry = pending.pop(0)
            if entry.car < len(cars):
                self._waiting.append(entry)
        if not self._waiting:
            return
        still = []
        for entry in self._waiting:  # in scenario order: the first one waiting for a car gets it
            car = cars[entry.car]
            if car.can_start_fault(ts):
                car.start_fault(entry.fault, ts, entry.duration_s, entry.detail)
            else:
                still.append(entry)
        self._waiting = still

    def run(self, duration_s: float) -> Iterator[tuple[int, list[Frame]]]:
        """Step for `duration_s` of vehicle time, yielding each tick's frames."""
        ticks = round(duration_s / self.config.tick_s)
        for _ in range(ticks):
            frames = self.step()
            yield self.ts, frames

    def finish(self) -> None:
        """Close faults still active at the end: their labels end at the last tick."""
        for car in self.cars:
            fault = car.fault
            if fault is not None:
                # Cut short by the end of the run: onset_ts stays null if the signature never showed.
                # Still active now, so it ends now (even when its planned end has passed: a fault
                # whose signature came late is held past it), never before its onset.
                fault.end_ts = self.ts
                car.labels.append(fault.label(car.profile.vin))
                car.fault = None

    def faults_started(self) -> int:
        """Faults injected so far, ended or still active."""
        return sum(len(car.labels) + (car.fault is not None) for car in self.cars)

    def labels(self) -> list[dict[str, Any]]:
        """Ground truth of every fault that has ended, ordered by start time."""
        found = [label for car in self.cars for label in car.labels]
        return sorted(found, key=lambda label: (label["start_ts"], label["vin"]))

    def manifest(self) -> dict[str, Any]:
        """Per car: class, driver style, route mix and the true fuel figures so far."""
        cars = []
        for car in self.cars:
            p = car.profile
            km = car.odometer_km - car.start_odometer_km
            litres = car.fuel_used_l - car.start_fuel_used_l
            cars.append(
                {
                    "vin": p.vin,
                    "vehicle_class": p.vehicle_class,
                    "driver_style": p.driver.name,
                    "route_weights": p.route_weights,
                    "trip_km": round(p.trip_km, 2),
                    "ambient_c": p.ambient_c,
                    "distance_km": round(km, 3),
                    "fuel_l": round(litres, 4),
                    "true_l_per_100km": round(litres / km * 100, 3) if km > 0.5 else None,
                }
            )
        return {
            "seed": self.config.seed,
            "cars": cars,
            "route_kinds": list(ROUTE_KINDS),
            "start_ts": self.config.start_ts,
            "tick_s": self.config.tick_s,
        }
