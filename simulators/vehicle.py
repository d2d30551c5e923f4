"""One simulated car: trips over routes, physics, thermal and electrical state, faults.

Pure and seeded: a `Car` owns a `random.Random` and advances only through `step(dt_s, ts)`;
`frames()` returns (vin, subsystem, frame) per subsystem in catalog order, each frame's keys in
catalog order (so the same seed gives the same bytes once encoded).
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any, Literal, TypeAlias

from schemas.catalog import BY_SUBSYSTEM, ENVELOPE, SCHEMA_VERSION, SUBSYSTEMS
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
Frame: TypeAlias = tuple[str, str, dict[str, Any]]  # (vin, subsystem, frame)
# A fault lasts at least this long past its onset: longer than any rule's on-delay (30 s) plus
# the time the hot path needs, so every label is detectable.
MIN_FAULT_HOLD_MS = 120_000
# No new fault on a car until this long after its last repair: longer than any rule's off-delay
# (60 s) plus the time a repaired system takes to return to normal (an overheated engine's coolant
# back under the 105 °C clear level, hot fluids included), so the next fault's label opens an alert
# episode of its own instead of extending the last one's.
FAULT_COOLDOWN_MS = 15 * 60_000


_CRITICAL_DTCS = frozenset(CRITICAL_DTCS)
_POW10 = tuple(10.0**n for n in range(7))


def _round(x: float, ndigits: int) -> float:
    """`round(x, ndigits)`, bit for bit, for about 60% of its cost.

    `round` prints x as a correctly rounded decimal string and parses it back; it dominates the
    cost of a frame. Its result is the double nearest k / 10**ndigits, k the integer nearest
    x * 10**ndigits, and that is what IEEE division of k by 10**ndigits (both exact) gives. Only
    a product within rounding error of a tie (or beyond 1e12) could pick another k: those few go
    to `round` itself.
    """
    scale = _POW10[ndigits]
    y = x * scale
    if -1e12 < y < 1e12:
        k = math.floor(y + 0.5)
        if -0.499 < y - k < 0.499:
            return k / scale if k else x * 0.0  # round keeps the sign of a zero
    return round(x, ndigits)


def _frame_templates(vin: str) -> tuple[dict[str, Any], ...]:
    """One dict per subsystem with every catalog field in catalog order, to be filled and copied."""
    return tuple(
        dict.fromkeys(ENVELOPE + tuple(s.name for s in BY_SUBSYSTEM[sub]), None)
        | {"vin": vin, "schema_version": SCHEMA_VERSION}
        for sub in SUBSYSTEMS
    )


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

    __slots__ = (
        "_cabin_c",
        "_counters_key",
        "_engine_key",
        "_ignition",
        "_intake_air_c",
        "_motion_key",
        "_pads_key",
        "_road_key",
        "_templates",
        "_thermal_seen",
        "_tires_key",
        "accel",
        "battery",
        "dtcs",
        "engine_hours",
        "fault",
        "fuel_level",
        "fuel_used_l",
        "heading",
        "idle_pt",
        "labels",
        "lat",
        "lon",
        "media",
        "mode",
        "odometer_km",
        "pads",
        "phase",
        "phase_left_s",
        "profile",
        "pt",
        "repaired_ts",
        "rng",
        "route",
        "running",
        "seg_index",
        "seg_pos",
        "seq",
        "speed",
        "start_fuel_used_l",
        "start_odometer_km",
        "stop_dwell_s",
        "thermal",
        "tire_leak",
        "tire_warm_c",
        "ts",
        "vc",
        "volume",
    )

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
        # Standing still, a running engine idles in neutral whatever the last acceleration was.
        self.idle_pt = physics.powertrain(self.vc, 0.0, 0.0)
        self.pt = self.idle_pt
        self.running = False
        self.media = self.rng.choice(MEDIA_SOURCES)
        self.volume = self.rng.randint(5, 40)
        self.mode = {"eco": "ECONOMY", "normal": "NORMAL", "aggressive": "SPORT"}[profile.driver.name]
        self.fault: ActiveFault | None = None
        self.repaired_ts: int | None = None  # when the last fault ended
        self.labels: list[dict[str, Any]] = []
        self.ts = start_ts
        # The frame templates `frames` fills and copies, with the per-car constants set once.
        ambient = profile.ambient_c
        self._templates = _frame_templates(profile.vin)
        self._templates[1]["performance_mode"] = self.mode
        self._templates[2]["ambient_temp_c"] = round(ambient, 1)
        self._intake_air_c = (round(ambient + 0.0, 1), round(ambient + 8.0, 1))  # by engine running
        self._cabin_c = (round(ambient, 1), round(21.0, 1))  # by engine running
        # What each group of template fields was last filled from (None and () match nothing, so
        # the first tick fills them all).
        self._ignition: bool | None = None
        self._engine_key: tuple[object, ...] = ()
        self._thermal_seen: physics.ThermalState | None = None
        self._counters_key: tuple[object, ...] = ()
        self._motion_key: tuple[object, ...] = ()
        self._pads_key: tuple[object, ...] = ()
        self._road_key: tuple[object, ...] = ()
        self._tires_key: tuple[object, ...] = ()

    # --- trips -------------------------------------------------------------------------------
    def _new_route(self, origin: tuple[float, float]) -> Route:
        length = max(2.0, self.rng.gauss(self.profile.trip_km, self.profile.trip_km * 0.3))
        return make_route(self.rng, self.profile.route_weights, length, origin)

    def _target_speed(self) -> tuple[float, float]:
        """(cruise target m/s, distance to the next stop m) on the current segment."""
        seg = self.route.segments[self.seg_index]
        target = seg.limit_kmh * self.profile.driver.cruise_factor / 3.6
        target += self.rng.gauss(0, self.profile.driver.speed_noise_kmh) / 3.6
        pos = self.seg_pos
        for stop in seg.stops_at_m:  # in order along the segment
            if stop > pos:
                to_stop = stop - pos
                break
        else:
            to_stop = seg.length_m - pos + (0.0 if self._last_segment() else math.inf)
        return (target if target > 0.0 else 0.0), to_stop

    def _last_segment(self) -> bool:
        return self.seg_index == len(self.route.segments) - 1

    def _drive(self, dt: float) -> None:
        driver = self.profile.driver
        target, to_stop = self._target_speed()
        v = self.speed
        brake_dist = v * v / (2 * driver.decel_ms2) + v * dt
        if to_stop <= (brake_dist if brake_dist > 1.0 else 1.0):
            if v > 0.3:
                # brake to stop at the line; d = v^2 / 2a
                needed = v * v / (2 * (to_stop if to_stop > 0.5 else 0.5))
                a = -(needed if needed < 2.5 * driver.decel_ms2 else 2.5 * driver.decel_ms2)
            else:
                a = -v / dt
        else:
            a = (target - v) / (dt if dt > 2.0 else 2.0)
            most = driver.accel_ms2 * (1.0 - 0.5 * v / 40.0)
            a = -driver.decel_ms2 if a < -driver.decel_ms2 else most if a > most else a
        v_new = v + a * dt
        v_new = v_new if v_new > 0.0 else 0.0
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
        self.running = running = self.phase != "parked"
        speed, vc = self.speed, self.vc
        if running and speed > 0:
            grade = self.route.segments[self.seg_index].grade
            pt = physics.powertrain(vc, speed, self.accel, grade, shift_rpm=self.profile.driver.shift_rpm)
        else:
            pt = self.idle_pt  # a parked car keeps it too; its frames report the engine stopped
        self.pt = pt
        if running:
            self._burn_fuel(pt.fuel_rate_lph, dt)
        fault = self.fault
        if fault is None:
            thermostat_stuck, coolant_leak, alternator_ok = False, 0.0, True
        else:
            thermostat_stuck = fault.kind == "overheat_thermostat"
            coolant_leak = fault.severity if fault.kind == "overheat_coolant_leak" else 0.0
            alternator_ok = fault.kind != "alternator_failure"
        self.thermal = physics.step_thermal(
            vc,
            self.thermal,
            dt,
            pt.engine_power_kw if running else 0.0,
            pt.engine_rpm,
            running,
            self.profile.ambient_c,
            speed,
            thermostat_stuck_closed=thermostat_stuck,
            coolant_leak=coolant_leak,
        )
        self.battery = physics.step_battery(
            self.battery,
            dt,
            running,
            pt.engine_rpm,
            ELECTRICAL_LOAD_A if running else 1.0,
            alternator_ok=alternator_ok,
        )
        if speed > 0.5 and self.accel < -0.3:
            front = physics.brake_pad_wear_step(self.pads[0], dt, -self.accel, speed)
            rear = physics.brake_pad_wear_step(self.pads[1], dt, -self.accel * 0.6, speed)
            rate = 40.0 if fault is not None and fault.kind == "brake_pads_worn" else 1.0
            self.pads = [
                self.pads[0] + (front - self.pads[0]) * rate,
                self.pads[1] + (rear - self.pads[1]) * rate,
            ]
        if speed > 0 or self.tire_warm_c != 0.0:  # cold tires on a standing car stay cold
            warm = self.tire_warm_c + (speed / 30.0 - self.tire_warm_c / 600.0) * dt * 0.05
            self.tire_warm_c = warm if warm < 25.0 else 25.0
        if fault is not None:
            self._apply_fault(fault, dt)

    def _burn_fuel(self, rate_lph: float, dt: float) -> None:
        """A running engine's fuel and hours over `dt`; the tank is refilled when nearly empty."""
        litres = rate_lph * dt / 3600.0
        self.fuel_used_l += litres
        level = self.fuel_level - litres / self.vc.tank_l * 100
        self.fuel_level = level if level > 2.0 else 2.0
        if self.fuel_level < 8.0:
            self.fuel_level = self.rng.uniform(85, 100)  # filled up at the next station
        self.engine_hours += dt / 3600.0

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
    def can_start_fault(self, ts: int) -> bool:
        """Whether a fault may start now: while driving, none active, the cool-down over."""
        # One at a time and well apart, so each label maps to one alert episode; only while
        # driving, so its signature can show (a car parked when its telematics unit fails never
        # looks stale: its last frame said the ignition was off).
        repaired = self.repaired_ts
        return (
            self.fault is None
            and self.phase == "driving"
            and (repaired is None or ts >= repaired + FAULT_COOLDOWN_MS)
        )

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
        self.repaired_ts = ts

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

    # --- frames ------------------------------------------------------------------------------
    # Each car keeps one template dict per subsystem and hands out copies: copying a dict is several
    # times cheaper than building one, and `round` is the costliest call in a frame, so each group
    # of fields is refilled only when what it is computed from has changed (a parked or idling car
    # repeats most of its values tick after tick).

    def frames(self) -> list[Frame]:
        """(vin, subsystem, frame) for each subsystem in catalog order, this tick; advances `seq`."""
        self.seq += 1
        engine, transmission, electronics, chassis, infotainment = self._templates
        ts, seq = self.ts, self.seq
        engine["ts"] = transmission["ts"] = electronics["ts"] = chassis["ts"] = infotainment["ts"] = ts
        engine["seq"] = transmission["seq"] = electronics["seq"] = chassis["seq"] = infotainment["seq"] = seq
        running, pt, bat, dtcs = self.running, self.pt, self.battery, self.dtcs
        moving = self.speed > 0.1
        if running is not self._ignition:
            self._fill_ignition(running)
        self._fill_engine(running, moving, pt)
        self._fill_chassis(moving)
        if running:  # oil pressure follows the oil temperature, which moves every tick
            engine["oil_pressure_kpa"] = _round(self.oil_pressure(), 1)
        electronics["battery_voltage_v"] = _round(bat.voltage_v, 3)
        electronics["battery_current_a"] = _round(bat.current_a, 2)
        electronics["dtc_list"] = list(dtcs)
        electronics["dtc_count"] = len(dtcs)
        electronics["mil_on"] = not _CRITICAL_DTCS.isdisjoint(dtcs)
        if moving:
            chassis["steering_angle_deg"] = _round(self.rng.gauss(0.0, 4.0), 1)
        vin = self.profile.vin
        return [
            (vin, "engine", engine.copy()),
            (vin, "transmission", transmission.copy()),
            (vin, "electronics", electronics.copy()),
            (vin, "chassis", chassis.copy()),
            (vin, "infotainment", infotainment.copy()),
        ]

    def _fill_ignition(self, running: bool) -> None:
        """The fields that follow the ignition alone."""
        self._ignition = running
        engine, transmission, electronics, _, infotainment = self._templates
        engine["engine_running"] = running
        engine["intake_air_temp_c"] = self._intake_air_c[running]
        transmission["selected_gear"] = 127 if running else 126
        transmission["park_lock"] = not running
        electronics["ignition"] = "ON" if running else "OFF"
        electronics["cabin_temp_c"] = self._cabin_c[running]
        infotainment["media_source"] = self.media if running else "SILENT"
        infotainment["volume_pct"] = self.volume if running else 0

    def _fill_engine(self, running: bool, moving: bool, pt: physics.PowertrainState) -> None:
        """Powertrain, fluid temperatures and counters, each group only if its inputs changed."""
        engine, transmission = self._templates[0], self._templates[1]
        key: tuple[object, ...] = (running, moving, pt)
        if key != self._engine_key:  # the idle state repeats tick after tick
            self._engine_key = key
            engine["engine_rpm"] = _round(pt.engine_rpm, 1) if running else 0.0
            engine["engine_load_pct"] = _round(pt.engine_load_pct, 1) if running else 0.0
            engine["throttle_pct"] = _round(pt.throttle_pct, 1) if running else 0.0
            engine["fuel_rate_lph"] = _round(pt.fuel_rate_lph, 3) if running else 0.0
            engine["maf_gps"] = _round(pt.maf_gps, 2) if running else 0.0
            if not running:
                engine["oil_pressure_kpa"] = 0.0  # else refilled every tick by `frames`
            transmission["gear"] = pt.gear if moving else 0
            transmission["clutch_engagement_pct"] = (
                100.0 if moving and pt.gear >= 2 else (0.0 if running and not moving else 60.0)
            )
        th = self.thermal
        if th is not self._thermal_seen:  # a parked car soaked to ambient keeps its state object
            self._thermal_seen = th
            engine["coolant_temp_c"] = _round(th.coolant_c, 2)
            engine["oil_temp_c"] = _round(th.oil_c, 2)
            transmission["trans_temp_c"] = _round(th.trans_c, 2)
        key = (self.fuel_used_l, self.fuel_level, self.engine_hours)
        if key != self._counters_key:  # only a running engine advances them
            self._counters_key = key
            engine["fuel_used_l"] = _round(self.fuel_used_l, 4)
            engine["fuel_level_pct"] = _round(self.fuel_level, 2)
            engine["engine_hours"] = _round(self.engine_hours, 4)

    def _fill_chassis(self, moving: bool) -> None:
        """Motion, brakes, road and tires, each group only if its inputs changed."""
        chassis, infotainment = self._templates[3], self._templates[4]
        speed, accel = self.speed, self.accel
        key: tuple[object, ...] = (speed, accel, self.odometer_km, self.lat, self.lon)
        if key != self._motion_key:  # only a driving car moves
            self._motion_key = key
            chassis["speed_kmh"] = _round(speed * 3.6, 2)
            chassis["odometer_km"] = _round(self.odometer_km, 4)
            chassis["accel_long_ms2"] = _round(accel, 3)
            pedal = min(100.0, max(0.0, -accel) * 12.0)
            chassis["brake_pedal_pct"] = _round(pedal, 1) if speed > 0.1 else 0.0
            infotainment["lat"] = _round(self.lat, 6)
            infotainment["lon"] = _round(self.lon, 6)
            if not moving:
                chassis["steering_angle_deg"] = 0.0  # else drawn every tick by `frames`
        pads = self.pads
        key = (pads[0], pads[1])
        if key != self._pads_key:  # pads wear only while braking
            self._pads_key = key
            chassis["brake_pad_wear_front_pct"] = _round(min(100.0, pads[0]), 3)
            chassis["brake_pad_wear_rear_pct"] = _round(min(100.0, pads[1]), 3)
        key = (self.heading, self.route, self.seg_index)
        if key != self._road_key:  # one road segment lasts many ticks
            self._road_key = key
            infotainment["heading_deg"] = _round(self.heading % 360.0, 1)
            grade = self.route.segments[self.seg_index].grade
            infotainment["altitude_m"] = _round(120.0 + grade * 500.0, 1)
            infotainment["nav_dest_lat"], infotainment["nav_dest_lon"] = self.route.destination
        leaks = self.tire_leak
        key = (self.tire_warm_c, *leaks.values())
        if key != self._tires_key:  # tires change only while driving, cooling or leaking
            self._tires_key = key
            if any(leaks.values()):
                for tire in TIRES:
                    chassis[tire] = _round(self.tire_pressure(tire), 1)
            else:  # one computation serves all four
                kpa = _round(self.tire_pressure(TIRES[0]), 1)
                for tire in TIRES:
                    chassis[tire] = kpa
