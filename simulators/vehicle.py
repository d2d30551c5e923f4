"""One simulated car: trips over routes, physics, thermal and electrical state, faults.

Pure and seeded: a `Car` owns a `random.Random` and advances only through `step(dt_s, ts)`;
`frames(ts)` returns one dict per subsystem in catalog order (so the same seed gives the same
bytes once encoded).
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any, Literal

from schemas.catalog import SCHEMA_VERSION
from simulators import physics
from simulators.drivers import DriverStyle
from simulators.faults import (
    BATTERY_RUNNING_MIN_V,
    BRAKE_PAD_WORN_PCT,
    COOLANT_WARN_C,
    CRITICAL_DTCS,
    FAULTS,
    OTHER_DTCS,
    PUNCTURE_KPA_PER_MIN,
    TIRE_LOW_FRACTION,
    TIRES,
    ActiveFault,
    FaultKind,
    oil_pressure_minimum,
)
from simulators.routes import Route, RouteKind, advance, make_route

Phase = Literal["parked", "warmup", "driving", "stopped"]
MEDIA_SOURCES = ("SILENT", "FM", "DAB", "USB", "BLUETOOTH", "INTERNET")
ELECTRICAL_LOAD_A = 25.0
# A fault lasts at least this long past its onset: longer than any rule's on-delay (30 s) plus
# the time the hot path needs, so every label is detectable.
MIN_FAULT_HOLD_MS = 120_000


@dataclasses.dataclass(frozen=True)
class CarProfile:
    """Who drives which car where: the ground truth `fleet.json` records per car."""

    vin: str
    vehicle_class: str
    driver: DriverStyle
    route_weights: dict[RouteKind, float]
    trip_km: float
    home: tuple[float, float]
    ambient_c: float


class Car:
    """State and behaviour of one car."""

    def __init__(self, profile: CarProfile, seed: int, start_ts: int):
        self.profile = profile
        self.vc = physics.VEHICLE_CLASSES[profile.vehicle_class]
        self.rng = random.Random(seed)
        self.seq = 0
        self.phase: Phase = "parked"
        self.phase_left_s = self.rng.uniform(5, 60)  # first trip starts soon
        self.speed = 0.0
        self.accel = 0.0
        self.odometer_km = self.rng.uniform(5_000, 120_000)
        self.fuel_used_l = self.odometer_km * 0.07
        self.fuel_level = self.rng.uniform(35, 95)
        self.start_odometer_km = self.odometer_km
        self.start_fuel_used_l = self.fuel_used_l
        self.engine_hours = self.odometer_km / 45.0
        self.thermal = physics.ThermalState.soaked(profile.ambient_c)
        self.battery = physics.BatteryState.resting(0.9)
        self.tire_leak = {t: 0.0 for t in TIRES}
        self.tire_warm_c = 0.0
        self.pads = [self.rng.uniform(10, 60), self.rng.uniform(5, 50)]  # front, rear wear %
        self.dtcs: list[str] = []
        self.route: Route = self._new_route(profile.home)
        self.seg_index = 0
        self.seg_pos = 0.0
        self.lat, self.lon = profile.home
        self.heading = self.route.segments[0].heading_deg
        self.stop_dwell_s = 0.0
        self.pt = physics.powertrain(self.vc, 0.0, 0.0)
        self.running = False
        self.media = self.rng.choice(MEDIA_SOURCES)
        self.volume = self.rng.randint(5, 40)
        self.mode = {"eco": "ECONOMY", "normal": "NORMAL", "aggressive": "SPORT"}[profile.driver.name]
        self.fault: ActiveFault | None = None
        self.labels: list[dict[str, Any]] = []
        self.ts = start_ts

    # --- trips -------------------------------------------------------------------------------
    def _new_route(self, origin: tuple[float, float]) -> Route:
        length = max(2.0, self.rng.gauss(self.profile.trip_km, self.profile.trip_km * 0.3))
        return make_route(self.rng, self.profile.route_weights, length, origin)

    @property
    def ignition_on(self) -> bool:
        """Ignition is on whenever the car is not parked."""
        return self.phase != "parked"

    def _target_speed(self) -> tuple[float, float]:
        """(cruise target m/s, distance to the next stop m) on the current segment."""
        seg = self.route.segments[self.seg_index]
        target = seg.limit_kmh * self.profile.driver.cruise_factor / 3.6
        target += self.rng.gauss(0, self.profile.driver.speed_noise_kmh) / 3.6
        ahead = [s - self.seg_pos for s in seg.stops_at_m if s > self.seg_pos]
        to_stop = (
            ahead[0] if ahead else seg.length_m - self.seg_pos + (0.0 if self._last_segment() else math.inf)
        )
        return max(0.0, target), to_stop

    def _last_segment(self) -> bool:
        return self.seg_index == len(self.route.segments) - 1

    def _drive(self, dt: float) -> None:
        driver = self.profile.driver
        target, to_stop = self._target_speed()
        v = self.speed
        brake_dist = v * v / (2 * driver.decel_ms2) + v * dt
        if to_stop <= max(brake_dist, 1.0):
            # brake to stop at the line; d = v^2 / 2a
            a = -min(v * v / (2 * max(to_stop, 0.5)), 2.5 * driver.decel_ms2) if v > 0.3 else -v / dt
        else:
            a = (target - v) / max(dt, 2.0)
            a = max(-driver.decel_ms2, min(a, driver.accel_ms2 * (1.0 - 0.5 * v / 40.0)))
        v_new = max(0.0, v + a * dt)
        moved = (v + v_new) / 2 * dt
        self.accel = (v_new - v) / dt
        self.speed = v_new
        self.seg_pos += moved
        self.odometer_km += moved / 1000.0
        seg = self.route.segments[self.seg_index]
        self.lat, self.lon = advance(self.lat, self.lon, seg.heading_deg, moved)
        self.heading = seg.heading_deg
        passed_stop = any(self.seg_pos - moved < s <= self.seg_pos + 0.5 for s in seg.stops_at_m)
        if self.seg_pos >= seg.length_m:
            self.seg_pos -= seg.length_m
            if self._last_segment():
                self._end_trip()
                return
            self.seg_index += 1
        if (passed_stop or self.speed < 0.3) and self.speed < 1.0 and to_stop < 5.0:
            self.speed = 0.0
            self.phase = "stopped"
            self.stop_dwell_s = self.rng.expovariate(1.0 / driver.idle_stop_s)

    def _end_trip(self) -> None:
        self.speed = 0.0
        self.accel = 0.0
        if self.fault is None:
            self.phase = "parked"
            self.phase_left_s = self.rng.uniform(120, 900)
        else:
            # A car with an active fault keeps driving (on to its next destination), so the fault's
            # signature stays continuous and its label maps to exactly one alert episode.
            self.phase = "stopped"
            self.stop_dwell_s = self.rng.uniform(5, 30)
        self.route = self._new_route(self.route.destination)
        self.seg_index = 0
        self.seg_pos = 0.0

    # --- one tick ----------------------------------------------------------------------------
    def step(self, dt: float, ts: int) -> None:
        """Advance the car by `dt` seconds of vehicle time, ending at `ts`."""
        self.ts = ts
        if self.phase == "parked":
            self.phase_left_s -= dt
            self.speed = self.accel = 0.0
            if self.phase_left_s <= 0:
                self.phase = "warmup"
                self.phase_left_s = self.rng.uniform(5, 3 * self.profile.driver.idle_stop_s)
        elif self.phase == "warmup":
            self.phase_left_s -= dt
            if self.phase_left_s <= 0:
                self.phase = "driving"
        elif self.phase == "stopped":
            self.stop_dwell_s -= dt
            if self.stop_dwell_s <= 0:
                self.phase = "driving"
                self.seg_pos += 1.0  # past the stop line
        else:
            self._drive(dt)
        self.running = self.phase != "parked"
        seg = self.route.segments[self.seg_index]
        grade = seg.grade if self.speed > 0 else 0.0
        if self.running:
            self.pt = physics.powertrain(
                self.vc, self.speed, self.accel, grade, shift_rpm=self.profile.driver.shift_rpm
            )
            self.fuel_used_l += self.pt.fuel_rate_lph * dt / 3600.0
            self.fuel_level = max(
                2.0, self.fuel_level - self.pt.fuel_rate_lph * dt / 3600.0 / self.vc.tank_l * 100
            )
            if self.fuel_level < 8.0:
                self.fuel_level = self.rng.uniform(85, 100)  # filled up at the next station
            self.engine_hours += dt / 3600.0
        else:
            self.pt = physics.powertrain(self.vc, 0.0, 0.0)
        fault = self.fault
        thermostat = fault is not None and fault.kind == "overheat_thermostat"
        leak = fault.severity if fault is not None and fault.kind == "overheat_coolant_leak" else 0.0
        engine_kw = self.pt.engine_power_kw if self.running else 0.0
        self.thermal = physics.step_thermal(
            self.vc,
            self.thermal,
            dt,
            engine_kw,
            self.pt.engine_rpm,
            self.running,
            self.profile.ambient_c,
            self.speed,
            thermostat_stuck_closed=thermostat,
            coolant_leak=leak,
        )
        alternator_ok = not (fault is not None and fault.kind == "alternator_failure")
        self.battery = physics.step_battery(
            self.battery,
            dt,
            self.running,
            self.pt.engine_rpm,
            ELECTRICAL_LOAD_A if self.running else 1.0,
            alternator_ok=alternator_ok,
        )
        if self.speed > 0.5 and self.accel < -0.3:
            front = physics.brake_pad_wear_step(self.pads[0], dt, -self.accel, self.speed)
            rear = physics.brake_pad_wear_step(self.pads[1], dt, -self.accel * 0.6, self.speed)
            rate = 40.0 if fault is not None and fault.kind == "brake_pads_worn" else 1.0
            self.pads = [
                self.pads[0] + (front - self.pads[0]) * rate,
                self.pads[1] + (rear - self.pads[1]) * rate,
            ]
        self.tire_warm_c = min(
            25.0, self.tire_warm_c + (self.speed / 30.0 - self.tire_warm_c / 600.0) * dt * 0.05
        )
        if fault is not None:
            self._apply_fault(fault, dt)

    def _apply_fault(self, fault: ActiveFault, dt: float) -> None:
        if fault.kind in ("tire_slow_leak", "tire_puncture"):
            per_min = (4.0 if fault.kind == "tire_slow_leak" else 60.0) * fault.severity
            placard = self.vc.tire_placard_kpa
            self.tire_leak[fault.detail] = min(
                placard * 0.8, self.tire_leak[fault.detail] + per_min * dt / 60.0
            )
        if fault.kind == "brake_pads_worn":
            # Pads near their limit wear through within a few minutes of driving.
            self.pads[0] = max(self.pads[0], BRAKE_PAD_WORN_PCT - 3) + (0.02 * dt if self.speed > 0 else 0.0)
        if fault.kind == "dtc_appeared" and fault.detail not in self.dtcs:
            self.dtcs.append(fault.detail)
        if fault.onset_ts is None and self._signature(fault):
            fault.onset_ts = self.ts

    def _signature(self, fault: ActiveFault) -> bool:
        """Whether the signals now meet the condition the fault's rule checks."""
        kind = fault.kind
        if kind in ("overheat_thermostat", "overheat_coolant_leak"):
            return self.thermal.coolant_c > COOLANT_WARN_C
        if kind == "oil_pressure_loss":
            return self.running and self.oil_pressure() < oil_pressure_minimum(self.pt.engine_rpm)
        if kind == "alternator_failure":
            return self.running and self.battery.voltage_v < BATTERY_RUNNING_MIN_V
        if kind == "tire_slow_leak":
            return self.tire_pressure(fault.detail) <= self.vc.tire_placard_kpa * TIRE_LOW_FRACTION
        if kind == "tire_puncture":
            return fault.severity * 60.0 > PUNCTURE_KPA_PER_MIN and self.tire_leak[fault.detail] > 0
        if kind == "brake_pads_worn":
            return self.pads[0] >= BRAKE_PAD_WORN_PCT
        if kind == "dtc_appeared":
            return fault.detail in self.dtcs
        return True  # telematics_silent: silent from the first tick

    # --- faults ------------------------------------------------------------------------------
    def can_start_fault(self) -> bool:
        """Faults start only while driving, one at a time, so each maps to one episode."""
        return self.fault is None and self.phase == "driving"

    def start_fault(
        self, kind: FaultKind, ts: int, duration_s: float | None = None, detail: str = ""
    ) -> None:
        """Inject a fault now."""
        spec = FAULTS[kind]
        duration = duration_s if duration_s is not None else self.rng.uniform(*spec.duration_s)
        if not detail:
            if kind in ("tire_slow_leak", "tire_puncture"):
                detail = self.rng.choice(TIRES)
            elif kind == "dtc_appeared":
                detail = self.rng.choice(CRITICAL_DTCS + OTHER_DTCS)
        severity = self.rng.uniform(0.7, 1.0)
        self.fault = ActiveFault(kind, ts, ts + int(duration * 1000), detail, severity)

    def end_fault_if_due(self, ts: int) -> None:
        """Repair the car when its fault's time is up, and file the label."""
        fault = self.fault
        if fault is None or ts < fault.end_ts:
            return
        if fault.onset_ts is None or ts < fault.onset_ts + MIN_FAULT_HOLD_MS:
            return  # not repaired before its rule has had time to see it
        fault.end_ts = ts  # the repair time, later than planned when the onset came late
        self.labels.append(fault.label(self.profile.vin))
        if fault.kind in ("tire_slow_leak", "tire_puncture"):
            self.tire_leak[fault.detail] = 0.0
        if fault.kind == "brake_pads_worn":
            self.pads[0] = self.rng.uniform(0, 5)  # new pads
        if fault.kind == "dtc_appeared" and fault.detail in self.dtcs:
            self.dtcs.remove(fault.detail)
        self.fault = None

    @property
    def silent(self) -> bool:
        """The telematics unit sends nothing while this fault is active."""
        return self.fault is not None and self.fault.kind == "telematics_silent"

    # --- signals -----------------------------------------------------------------------------
    def oil_pressure(self) -> float:
        """Current oil pressure, with a failing pump if that is the fault."""
        health = 0.2 if self.fault is not None and self.fault.kind == "oil_pressure_loss" else 1.0
        return physics.oil_pressure_kpa(
            self.vc, self.pt.engine_rpm, self.thermal.oil_c, self.running, pump_health=health
        )

    def tire_pressure(self, tire: str) -> float:
        """One tire's pressure: placard, warmed by driving, minus any leak."""
        return physics.tire_pressure_kpa(self.vc.tire_placard_kpa, self.tire_warm_c, self.tire_leak[tire])

    def frames(self) -> dict[str, dict[str, Any]]:
        """One frame per subsystem for the current tick; advances `seq`."""
        self.seq += 1
        pt, th, bat, r = self.pt, self.thermal, self.battery, round
        running = self.running
        head = {"vin": self.profile.vin, "ts": self.ts, "seq": self.seq, "schema_version": SCHEMA_VERSION}
        moving = self.speed > 0.1
        stopped_in_gear = running and not moving
        return {
            "engine": {
                **head,
                "engine_running": running,
                "engine_rpm": r(pt.engine_rpm if running else 0.0, 1),
                "engine_load_pct": r(pt.engine_load_pct if running else 0.0, 1),
                "throttle_pct": r(pt.throttle_pct if running else 0.0, 1),
                "coolant_temp_c": r(th.coolant_c, 2),
                "oil_temp_c": r(th.oil_c, 2),
                "oil_pressure_kpa": r(self.oil_pressure(), 1),
                "fuel_rate_lph": r(pt.fuel_rate_lph if running else 0.0, 3),
                "fuel_used_l": r(self.fuel_used_l, 4),
                "fuel_level_pct": r(self.fuel_level, 2),
                "intake_air_temp_c": r(self.profile.ambient_c + (8.0 if running else 0.0), 1),
                "maf_gps": r(pt.maf_gps if running else 0.0, 2),
                "engine_hours": r(self.engine_hours, 4),
            },
            "transmission": {
                **head,
                "gear": pt.gear if moving else 0,
                "selected_gear": 127 if running else 126,
                "trans_temp_c": r(th.trans_c, 2),
                "clutch_engagement_pct": 100.0
                if moving and pt.gear >= 2
                else (0.0 if stopped_in_gear else 60.0),
                "park_lock": not running,
                "performance_mode": self.mode,
            },
            "electronics": {
                **head,
                "ignition": "ON" if running else "OFF",
                "battery_voltage_v": r(bat.voltage_v, 3),
                "battery_current_a": r(bat.current_a, 2),
                "dtc_list": list(self.dtcs),
                "dtc_count": len(self.dtcs),
                "mil_on": any(code in CRITICAL_DTCS for code in self.dtcs),
                "ambient_temp_c": r(self.profile.ambient_c, 1),
                "cabin_temp_c": r(21.0 if running else self.profile.ambient_c, 1),
            },
            "chassis": {
                **head,
                "speed_kmh": r(self.speed * 3.6, 2),
                "odometer_km": r(self.odometer_km, 4),
                "accel_long_ms2": r(self.accel, 3),
                "tire_fl_kpa": r(self.tire_pressure("tire_fl_kpa"), 1),
                "tire_fr_kpa": r(self.tire_pressure("tire_fr_kpa"), 1),
                "tire_rl_kpa": r(self.tire_pressure("tire_rl_kpa"), 1),
                "tire_rr_kpa": r(self.tire_pressure("tire_rr_kpa"), 1),
                "brake_pad_wear_front_pct": r(min(100.0, self.pads[0]), 3),
                "brake_pad_wear_rear_pct": r(min(100.0, self.pads[1]), 3),
                "brake_pedal_pct": r(min(100.0, max(0.0, -self.accel) * 12.0) if moving else 0.0, 1),
                "steering_angle_deg": r(self.rng.gauss(0.0, 4.0) if moving else 0.0, 1),
            },
            "infotainment": {
                **head,
                "lat": r(self.lat, 6),
                "lon": r(self.lon, 6),
                "heading_deg": r(self.heading % 360.0, 1),
                "altitude_m": r(120.0 + self.route.segments[self.seg_index].grade * 500.0, 1),
                "nav_dest_lat": self.route.destination[0],
                "nav_dest_lon": self.route.destination[1],
                "media_source": self.media if running else "SILENT",
                "volume_pct": self.volume if running else 0,
            },
        }
