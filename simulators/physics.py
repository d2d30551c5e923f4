"""Vehicle physics for the simulated fleet: road load, powertrain, heat, oil, battery, tires, brakes.

Everything here is a pure, deterministic function of its arguments: the simulator owns time,
randomness and state, and calls these once per tick to turn a driver's speed and acceleration
into the engine, transmission, electronics and chassis signals of `schemas.catalog`.

Fuel follows the Willans line: fuel power = (brake power + losses(rpm)) / marginal efficiency,
with brake power from the road load (rolling + aero + inertia + grade) through the drivetrain.
The "midsize" class is tuned to the classic steady-speed curve of a 1.5 t petrol sedan
(about 5.3 / 5.1 / 5.6 / 6.3 / 7.2 L/100 km at 50 / 60 / 89 / 105 / 121 km/h, 1.4 L/h at idle).
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

from schemas.catalog import BY_NAME

AIR_DENSITY_KG_M3 = 1.2
GRAVITY_MS2 = 9.81
GASOLINE_KWH_PER_L = 8.9  # lower heating value, 32 MJ/L
GASOLINE_KG_PER_L = 0.745
STOICHIOMETRIC_AFR = 14.7

_STOPPED_MS = 0.1  # below this the car is standing, in neutral/park
_FUEL_CUT_MS = 20 / 3.6  # ECUs cut injection on overrun only above ~20 km/h, else they idle
_KICKDOWN = 0.85  # downshift when demand exceeds this share of the power available in gear
_CLOSED_THROTTLE_AIR = 0.5  # overrun airflow vs idle airflow at the same rpm (throttle shut)


def _limits(signal: str) -> tuple[float, float]:
    """The catalog's (min, max) for a numeric signal."""
    s = BY_NAME[signal]
    assert s.min is not None and s.max is not None, signal
    return float(s.min), float(s.max)


def _clamp(x: float, lo: float, hi: float) -> float:
    return lo if x < lo else hi if x > hi else x


_COOLANT_C = _limits("coolant_temp_c")
_OIL_C = _limits("oil_temp_c")
_TRANS_C = _limits("trans_temp_c")
_FUEL_LPH = _limits("fuel_rate_lph")
_MAF_GPS = _limits("maf_gps")
_RPM = _limits("engine_rpm")
_VOLTS = _limits("battery_voltage_v")
_AMPS = _limits("battery_current_a")
_OIL_KPA = _limits("oil_pressure_kpa")
_TIRE_KPA = _limits("tire_fl_kpa")
_PAD_PCT = _limits("brake_pad_wear_front_pct")


@dataclasses.dataclass(frozen=True)
class VehicleClass:
    """Physical parameters of one kind of car; every simulated car is an instance of a class."""

    name: str
    mass_kg: float  # kerb mass plus driver
    frontal_area_m2: float
    drag_coefficient: float
    rolling_resistance: float  # Crr
    drivetrain_efficiency: float  # gearbox + final drive, engine crank to wheel
    wheel_radius_m: float  # dynamic rolling radius
    gear_ratios: tuple[float, ...]  # forward gears, first to top
    final_drive: float
    idle_rpm: float
    max_rpm: float
    max_torque_nm: float  # flat torque curve, capped by max_power_kw
    max_power_kw: float
    willans_efficiency: float  # marginal efficiency: d(brake power) / d(fuel power)
    loss_idle_kw: float  # friction + pumping losses at idle rpm, the Willans line's intercept
    loss_kw_per_krpm: float  # losses growing with engine speed (linear term)
    loss_kw_per_krpm2: float  # ... and the quadratic term (viscous friction)
    accessory_kw: float  # alternator, power steering, A/C average
    tank_l: float
    tire_placard_kpa: float  # cold gauge pressure on the door-pillar placard
    thermal_mass_kj_per_k: float  # coolant plus the engine metal it warms
    # Radiator conductance, thermostat fully open, at highway airflow. Sized like a real one: at
    # half the rated power on a 40 °C day the thermostat still regulates (coolant under 95 °C), so a
    # healthy engine never nears the 110 °C warning however it is driven.
    radiator_ua_kw_per_k: float

    @property
    def drag_area_m2(self) -> float:
        """CdA, the product that sets aerodynamic drag."""
        return self.drag_coefficient * self.frontal_area_m2


VEHICLE_CLASSES: dict[str, VehicleClass] = {
    "compact": VehicleClass(
        name="compact",
        mass_kg=1250.0,
        frontal_area_m2=2.05,
        drag_coefficient=0.29,
        rolling_resistance=0.0095,
        drivetrain_efficiency=0.91,
        wheel_radius_m=0.30,
        gear_ratios=(3.73, 2.05, 1.36, 1.03, 0.82, 0.68),
        final_drive=3.9,
        idle_rpm=750.0,
        max_rpm=6500.0,
        max_torque_nm=200.0,
        max_power_kw=92.0,
        willans_efficiency=0.36,
        loss_idle_kw=3.3,
        loss_kw_per_krpm=0.45,
        loss_kw_per_krpm2=0.15,
        accessory_kw=0.7,
        tank_l=45.0,
        tire_placard_kpa=230.0,
        thermal_mass_kj_per_k=34.0,
        radiator_ua_kw_per_k=0.9,
    ),
    "midsize": VehicleClass(
        name="midsize",
        mass_kg=1500.0,
        frontal_area_m2=2.24,
        drag_coefficient=0.29,
        rolling_resistance=0.010,
        drivetrain_efficiency=0.90,
        wheel_radius_m=0.317,
        gear_ratios=(4.15, 2.37, 1.56, 1.16, 0.86, 0.69),
        final_drive=3.5,
        idle_rpm=750.0,
        max_rpm=6500.0,
        max_torque_nm=250.0,
        max_power_kw=120.0,
        willans_efficiency=0.36,
        loss_idle_kw=3.7,
        loss_kw_per_krpm=0.5,
        loss_kw_per_krpm2=0.2,
        accessory_kw=0.8,
        tank_l=60.0,
        tire_placard_kpa=240.0,
        thermal_mass_kj_per_k=40.0,
        radiator_ua_kw_per_k=1.1,
    ),
    "suv": VehicleClass(
        name="suv",
        mass_kg=2000.0,
        frontal_area_m2=2.75,
        drag_coefficient=0.35,
        rolling_resistance=0.011,
        drivetrain_efficiency=0.88,
        wheel_radius_m=0.36,
        gear_ratios=(4.70, 2.84, 1.91, 1.38, 1.00, 0.81, 0.70),
        final_drive=3.3,
        idle_rpm=700.0,
        max_rpm=6200.0,
        max_torque_nm=330.0,
        max_power_kw=170.0,
        willans_efficiency=0.35,
        loss_idle_kw=4.6,
        loss_kw_per_krpm=0.65,
        loss_kw_per_krpm2=0.25,
        accessory_kw=1.0,
        tank_l=70.0,
        tire_placard_kpa=250.0,
        thermal_mass_kj_per_k=52.0,
        radiator_ua_kw_per_k=1.6,
    ),
}


# --- road load and powertrain

# Functions called every tick write `max(x, 0.0)` as `x if x > 0.0 else 0.0` (and likewise for min,
# and the hottest clamps inline): the builtins parse keyword arguments on every call and cost several
# times a comparison.


def road_load_n(vc: VehicleClass, speed_ms: float, accel_ms2: float, grade: float = 0.0) -> float:
    """Tractive force at the wheels (N): rolling + aero + inertia + grade; negative means braking."""
    v = speed_ms if speed_ms > 0.0 else 0.0
    theta = math.atan(grade)  # grade is rise over run: 0.05 = 5 %
    rolling = vc.rolling_resistance * vc.mass_kg * GRAVITY_MS2 * math.cos(theta) if v > 0 else 0.0
    aero = 0.5 * AIR_DENSITY_KG_M3 * vc.drag_area_m2 * v * v
    climb = vc.mass_kg * GRAVITY_MS2 * math.sin(theta)
    return rolling + aero + vc.mass_kg * accel_ms2 + climb


def wheel_power_kw(vc: VehicleClass, speed_ms: float, accel_ms2: float, grade: float = 0.0) -> float:
    """Power the wheels deliver to the road (kW); negative while braking or coasting downhill."""
    return road_load_n(vc, speed_ms, accel_ms2, grade) * (speed_ms if speed_ms > 0.0 else 0.0) / 1000.0


def _wheel_rpm(vc: VehicleClass, speed_ms: float) -> float:
    return (speed_ms if speed_ms > 0.0 else 0.0) / vc.wheel_radius_m * 60.0 / (2.0 * math.pi)


def gear_rpm(vc: VehicleClass, speed_ms: float, gear: int) -> float:
    """Engine speed locked to the wheels in `gear` (1-based), before any idle or redline clamp."""
    return _wheel_rpm(vc, speed_ms) * vc.gear_ratios[gear - 1] * vc.final_drive


def select_gear(vc: VehicleClass, speed_ms: float, *, shift_rpm: float = 2000.0) -> int:
    """The gear a shift schedule upshifting at `shift_rpm` holds at this speed; 0 when stopped."""
    return _scheduled_gear(vc, speed_ms, _wheel_rpm(vc, speed_ms), shift_rpm)


def _scheduled_gear(vc: VehicleClass, speed_ms: float, wheel_rpm: float, shift_rpm: float) -> int:
    """`select_gear` given the wheel rpm already worked out for this speed."""
    if speed_ms < _STOPPED_MS:
        return 0
    # Keep the schedule sane whatever a driver profile asks: no lugging, no redline cruising.
    upshift = _clamp(shift_rpm, 1.8 * vc.idle_rpm, 0.9 * vc.max_rpm)
    final_drive = vc.final_drive
    for gear, ratio in enumerate(vc.gear_ratios, start=1):
        if wheel_rpm * ratio * final_drive <= upshift:
            return gear
    return len(vc.gear_ratios)


def available_power_kw(vc: VehicleClass, engine_rpm: float) -> float:
    """Full-load brake power at `engine_rpm`: the torque plateau, capped at rated power."""
    plateau_kw = vc.max_torque_nm * engine_rpm * 2.0 * math.pi / 60.0 / 1000.0
    return plateau_kw if plateau_kw < vc.max_power_kw else vc.max_power_kw


def loss_kw(vc: VehicleClass, engine_rpm: float) -> float:
    """Friction and pumping losses (kW) at `engine_rpm`: the Willans line's rpm-dependent intercept."""
    above_idle = engine_rpm - vc.idle_rpm
    dk = (above_idle if above_idle > 0.0 else 0.0) / 1000.0
    return vc.loss_idle_kw + vc.loss_kw_per_krpm * dk + vc.loss_kw_per_krpm2 * dk * dk


def fuel_power_kw(vc: VehicleClass, engine_power_kw: float, engine_rpm: float) -> float:
    """Chemical power burned (kW) to make `engine_power_kw` of brake power at `engine_rpm`."""
    brake_kw = engine_power_kw if engine_power_kw > 0.0 else 0.0
    return (brake_kw + loss_kw(vc, engine_rpm)) / vc.willans_efficiency


def _lph(fuel_kw: float) -> float:
    return fuel_kw / GASOLINE_KWH_PER_L


def _maf_gps(fuel_lph: float) -> float:
    return fuel_lph * GASOLINE_KG_PER_L * 1000.0 / 3600.0 * STOICHIOMETRIC_AFR


class PowertrainState(NamedTuple):
    """What the engine and gearbox are doing at one instant."""

    gear: int  # 0 when stopped (neutral/park)
    engine_rpm: float
    engine_load_pct: float  # OBD calculated load: airflow vs full-load airflow at this rpm
    throttle_pct: float
    wheel_power_kw: float  # negative while braking
    engine_power_kw: float  # brake power incl. accessories; 0 on overrun fuel cut-off
    fuel_rate_lph: float
    maf_gps: float


def powertrain(
    vc: VehicleClass,
    speed_ms: float,
    accel_ms2: float,
    grade: float = 0.0,
    *,
    shift_rpm: float = 2000.0,
) -> PowertrainState:
    """Gear, rpm, load, throttle, fuel and airflow of a running engine moving the car as asked."""
    v = speed_ms if speed_ms > 0.0 else 0.0
    wheel_kw = road_load_n(vc, v, accel_ms2, grade) * v / 1000.0
    demand_kw = (wheel_kw if wheel_kw > 0.0 else 0.0) / vc.drivetrain_efficiency + vc.accessory_kw
    wheel_rpm = _wheel_rpm(vc, v)  # every gear's rpm below is `gear_rpm`, sharing this
    ratios, final_drive, idle_rpm = vc.gear_ratios, vc.final_drive, vc.idle_rpm
    redline = vc.max_rpm if vc.max_rpm < _RPM[1] else _RPM[1]
    gear = _scheduled_gear(vc, v, wheel_rpm, shift_rpm)

    def rpm_in(g: int) -> float:
        if g == 0:
            return idle_rpm
        # Below idle speed the torque converter slips and the engine holds idle.
        return _clamp(wheel_rpm * ratios[g - 1] * final_drive, idle_rpm, redline)

    # Kick-down: a hard pedal drops gears while the lower one stays under the redline.
    while (
        gear > 1
        and demand_kw > _KICKDOWN * available_power_kw(vc, rpm_in(gear))
        and wheel_rpm * ratios[gear - 2] * final_drive <= 0.95 * vc.max_rpm
    ):
        gear -= 1
    rpm = rpm_in(gear)
    full_kw = available_power_kw(vc, rpm)

    if wheel_kw < 0.0 and v > _FUEL_CUT_MS:
        # Overrun: injectors off, the wheels drive the engine and accessories.
        idle_fuel_kw = fuel_power_kw(vc, vc.accessory_kw, idle_rpm)
        maf = _maf_gps(_lph(idle_fuel_kw)) * _CLOSED_THROTTLE_AIR * rpm / idle_rpm
        return PowertrainState(gear, rpm, 0.0, 0.0, wheel_kw, 0.0, 0.0, _clamp(maf, *_MAF_GPS))

    engine_kw = demand_kw if demand_kw < full_kw else full_kw
    losses = loss_kw(vc, rpm)
    fuel_kw = (engine_kw + losses) / vc.willans_efficiency  # fuel_power_kw; engine_kw > 0 already
    load = _clamp(100.0 * (engine_kw + losses) / (full_kw + losses), 0.0, 100.0)
    # The throttle plate opens faster than airflow rises at part load (flow is not linear in angle).
    throttle = _clamp(100.0 * (load / 100.0) ** 1.5, 0.0, 100.0)
    lph = _clamp(_lph(fuel_kw), *_FUEL_LPH)
    return PowertrainState(
        gear, rpm, load, throttle, wheel_kw, engine_kw, lph, _clamp(_maf_gps(lph), *_MAF_GPS)
    )


def fuel_rate_lph(
    vc: VehicleClass,
    speed_ms: float,
    accel_ms2: float,
    grade: float = 0.0,
    *,
    shift_rpm: float = 2000.0,
) -> float:
    """Instantaneous fuel rate (L/h) of a running engine moving the car as asked."""
    return powertrain(vc, speed_ms, accel_ms2, grade, shift_rpm=shift_rpm).fuel_rate_lph


# --- heat: coolant, oil, transmission fluid

_THERMOSTAT_OPEN_C = 88.0  # wax element starts to open...
_THERMOSTAT_FULL_C = 95.0  # ...and is fully open here
# A closed thermostat still bleeds a little coolant through its jiggle valve: a fixed orifice, so a
# fixed conductance whatever the radiator's size (and all a stuck-closed thermostat leaves).
_THERMOSTAT_BLEED_UA_KW_PER_K = 0.009
# The electric fan ramps up once the thermostat is fully open and the coolant still climbs (idling
# in traffic after a hard run), and is flat out well before the 110 °C warning.
_FAN_ON_C = 96.0
_FAN_FULL_C = 101.0
_FAN_AIRFLOW = 0.8  # the fan alone pulls this share of highway ram air through the radiator
_COOLANT_SHARE = 0.4  # of the fuel's waste heat; most of the rest leaves in the exhaust
_OIL_SHARE = 0.35  # of friction losses, picked up by the oil in bearings and piston skirts
_TRANS_SHARE = 0.45  # of drivetrain losses, dissipated in the gearbox itself
# The ATF cooler: a fluid-to-coolant exchanger in the coolant returning from the radiator, big
# enough to hold the fluid within a few kelvin of the coolant under hard highway load (with the
# thermostat fully open; with the engine off the fluids share heat only through the metal).
_ATF_COOLER_UA_KW_PER_K = 0.25
_COOLANT_FLOW_KW_PER_K = 6.0  # water pump flow x heat capacity: ~1.6 kg/s of 50/50 glycol
_OIL_KJ_PER_K = 15.0
_TRANS_KJ_PER_K = 12.0
_THERMAL_SUBSTEP_S = 1.0  # explicit Euler stays stable well below the thermostat's ~2.5 s loop


class ThermalState(NamedTuple):
    """Fluid temperatures (°C)."""

    coolant_c: float
    oil_c: float
    trans_c: float

    @classmethod
    def soaked(cls, ambient_c: float) -> ThermalState:
        """A car that has stood long enough to sit at the ambient temperature."""
        t = ambient_c + 0.0  # an ambient of -0.0 reads 0.0, as after any Euler step
        return cls(t, t, t)


def _radiator_airflow(speed_ms: float, coolant_c: float) -> float:
    """Radiator airflow as a share of highway ram air; the fan takes over when standing."""
    ram_share = speed_ms / 25.0
    ram = 0.3 + 0.7 * (ram_share if ram_share < 1.0 else 1.0)
    if coolant_c <= _FAN_ON_C or ram >= _FAN_AIRFLOW:
        return ram
    duty = (coolant_c - _FAN_ON_C) / (_FAN_FULL_C - _FAN_ON_C)
    return ram + (_FAN_AIRFLOW - ram) * (duty if duty < 1.0 else 1.0)


def _thermal_rates(
    vc: VehicleClass,
    coolant_c: float,
    oil_c: float,
    trans_c: float,
    engine_power_kw: float,
    engine_rpm: float,
    running: bool,
    ambient_c: float,
    speed_ms: float,
    thermostat_stuck_closed: bool,
    coolant_leak: float,
) -> tuple[float, float, float]:
    """d(temperature)/dt (K/s) for (coolant, oil, transmission fluid)."""
    v = speed_ms if speed_ms > 0.0 else 0.0
    leak = _clamp(coolant_leak, 0.0, 1.0) if coolant_leak else 0.0
    if running:
        brake_kw = engine_power_kw if engine_power_kw > 0.0 else 0.0
        losses = loss_kw(vc, engine_rpm)
        waste_kw = (brake_kw + losses) / vc.willans_efficiency - brake_kw  # fuel power minus brake power
        q_coolant = _COOLANT_SHARE * waste_kw
        q_oil = _OIL_SHARE * losses
        drive_kw = brake_kw - vc.accessory_kw
        drive_kw = drive_kw if drive_kw > 0.0 else 0.0
        q_trans = _TRANS_SHARE * drive_kw * (1.0 - vc.drivetrain_efficiency) + 0.15 * engine_rpm / 1000.0
        if thermostat_stuck_closed:
            opening = 0.0
        else:
            span = _THERMOSTAT_FULL_C - _THERMOSTAT_OPEN_C
            opening = _clamp((coolant_c - _THERMOSTAT_OPEN_C) / span, 0.0, 1.0)
        # A leak first loses flow (air in the pump), then the radiator runs dry.
        circulation = 1.0 - 2.0 * leak
        circulation = circulation if circulation > 0.0 else 0.0
        airflow = _radiator_airflow(v, coolant_c)
        ua_open = vc.radiator_ua_kw_per_k * opening + _THERMOSTAT_BLEED_UA_KW_PER_K
        ua_radiator = ua_open * circulation * airflow
        # The ATF cooler gets its flow from the radiator: little until the thermostat opens (so
        # it does not slow the warm-up), none once a leak has emptied the pump.
        ua_trans_coolant = _ATF_COOLER_UA_KW_PER_K * (0.2 + 0.8 * opening * circulation)
        ua_oil_coolant = 0.12
    else:
        # Water pump is belt-driven: no flow, so the fluids only share heat through the metal.
        q_coolant = q_oil = q_trans = 0.0
        ua_radiator, ua_oil_coolant, ua_trans_coolant = 0.0, 0.03, 0.01
    ua_block_air = 0.008 + 0.0005 * v
    ua_sump_air = 0.002 + 0.0002 * v
    ua_case_air = 0.006 + 0.0008 * v

    oil_to_coolant = ua_oil_coolant * (oil_c - coolant_c)
    radiator_kw = ua_radiator * (coolant_c - ambient_c)
    # The ATF cooler sits in the coolant returning to the pump (radiator outlet mixed with the
    # thermostat's bypass): cooler than the engine by what the radiator just took out of it.
    return_c = coolant_c - radiator_kw / _COOLANT_FLOW_KW_PER_K
    trans_to_coolant = ua_trans_coolant * (trans_c - return_c)
    coolant_out = radiator_kw + ua_block_air * (coolant_c - ambient_c)
    coolant_kj_per_k = vc.thermal_mass_kj_per_k * (1.0 - 0.5 * leak)  # about half of it is coolant
    return (
        (q_coolant + oil_to_coolant + trans_to_coolant - coolant_out) / coolant_kj_per_k,
        (q_oil - oil_to_coolant - ua_sump_air * (oil_c - ambient_c)) / _OIL_KJ_PER_K,
        (q_trans - trans_to_coolant - ua_case_air * (trans_c - ambient_c)) / _TRANS_KJ_PER_K,
    )


# Temperatures every fluid's catalog range admits: a soaked state inside it is left as it is.
_SOAK_RANGE_C = (max(_COOLANT_C[0], _OIL_C[0], _TRANS_C[0]), min(_COOLANT_C[1], _OIL_C[1], _TRANS_C[1]))


def step_thermal(
    vc: VehicleClass,
    state: ThermalState,
    dt_s: float,
    engine_power_kw: float,
    engine_rpm: float,
    running: bool,
    ambient_c: float,
    speed_ms: float,
    *,
    thermostat_stuck_closed: bool = False,
    coolant_leak: float = 0.0,
) -> ThermalState:
    """Advance the fluid temperatures by `dt_s`; faults make the coolant climb past 116 °C."""
    coolant, oil, trans = state
    if (
        not running
        and coolant == oil == trans == ambient_c
        and _SOAK_RANGE_C[0] <= ambient_c <= _SOAK_RANGE_C[1]
    ):
        # A parked car soaked to ambient has no heat flow at all: every rate is exactly zero, and
        # returning the same object lets callers skip re-deriving anything from it.
        return state
    steps = math.ceil(dt_s / _THERMAL_SUBSTEP_S)
    steps = steps if steps > 1 else 1
    h = (dt_s if dt_s > 0.0 else 0.0) / steps
    coolant_lo, coolant_hi = _COOLANT_C
    oil_lo, oil_hi = _OIL_C
    trans_lo, trans_hi = _TRANS_C
    for _ in range(steps):
        d_coolant, d_oil, d_trans = _thermal_rates(
            vc,
            coolant,
            oil,
            trans,
            engine_power_kw,
            engine_rpm,
            running,
            ambient_c,
            speed_ms,
            thermostat_stuck_closed,
            coolant_leak,
        )
        # Clamped to the catalog ranges (written out: this runs for every car on every tick).
        coolant += h * d_coolant
        coolant = coolant_lo if coolant < coolant_lo else coolant_hi if coolant > coolant_hi else coolant
        oil += h * d_oil
        oil = oil_lo if oil < oil_lo else oil_hi if oil > oil_hi else oil
        trans += h * d_trans
        trans = trans_lo if trans < trans_lo else trans_hi if trans > trans_hi else trans
    return ThermalState(coolant, oil, trans)


# --- oil pressure

_OIL_RELIEF_KPA = 500.0  # the pump's relief valve caps the gallery pressure
_OIL_PUMP_GAIN = 0.476  # per 1000 rpm at 100 °C: ~150 kPa at hot idle, ~380 kPa at 3000 rpm


def oil_pressure_kpa(
    vc: VehicleClass, engine_rpm: float, oil_c: float, running: bool, *, pump_health: float = 1.0
) -> float:
    """Oil gallery gauge pressure (kPa): rises with rpm and viscosity, capped by the relief valve."""
    if not running:
        return 0.0
    rpm = engine_rpm if engine_rpm > vc.idle_rpm else vc.idle_rpm
    oil_lo, oil_hi = _OIL_C
    viscosity = math.exp(-0.015 * (_clamp(oil_c, oil_lo, oil_hi) - 100.0))  # vs hot oil; cold is thick
    healthy = _OIL_RELIEF_KPA * (1.0 - math.exp(-_OIL_PUMP_GAIN * rpm / 1000.0 * viscosity))
    # A worn pump leaks internally, losing both flow and the pressure it can hold.
    kpa_lo, kpa_hi = _OIL_KPA
    return _clamp(healthy * _clamp(pump_health, 0.0, 1.0) ** 1.5, kpa_lo, kpa_hi)


# --- 12 V electrical system

BATTERY_AH = 60.0
_BATTERY_OHM = 0.015
_ALTERNATOR_MAX_A = 120.0


def open_circuit_voltage(soc: float) -> float:
    """Resting voltage of a lead-acid battery at state of charge `soc` (12.7 V full, 11.9 V flat)."""
    soc = _clamp(soc, 0.0, 1.0)
    sag = 30.0 * (0.1 - soc) if soc < 0.1 else 0.0  # a nearly flat battery collapses
    return 11.9 + 0.8 * soc - sag


class BatteryState(NamedTuple):
    """The 12 V battery: charge, terminal voltage and current (positive charging)."""

    soc: float
    voltage_v: float
    current_a: float

    @classmethod
    def resting(cls, soc: float) -> BatteryState:
        """A battery that has sat unloaded at `soc`."""
        return cls(soc, open_circuit_voltage(soc), 0.0)


def step_battery(
    state: BatteryState,
    dt_s: float,
    running: bool,
    engine_rpm: float,
    load_a: float,
    *,
    alternator_ok: bool = True,
) -> BatteryState:
    """Advance the battery by `dt_s` with `load_a` drawn by the car's electrics."""
    load = load_a if load_a > 0.0 else 0.0
    charging = running and alternator_ok
    amps_lo, amps_hi = _AMPS
    if charging:
        # The alternator's output climbs with engine speed until it saturates.
        rpm_share = (engine_rpm if engine_rpm > 0.0 else 0.0) / 2000.0
        headroom = _ALTERNATOR_MAX_A * (rpm_share if rpm_share < 1.0 else 1.0) - load
        acceptance = 150.0 * (1.0 - state.soc)  # a fuller battery takes less current
        current = _clamp(headroom if headroom < acceptance else acceptance, amps_lo, amps_hi)
    else:
        current = -load if -load > amps_lo else amps_lo  # a load is never negative: no upper bound
    soc = state.soc + current * (dt_s if dt_s > 0.0 else 0.0) / 3600.0 / BATTERY_AH
    soc = 0.0 if soc < 0.0 else 1.0 if soc > 1.0 else soc
    if charging and current >= 0.0:
        # The regulator holds a 14.4 V bulk charge, tapering to a 13.8 V float as the battery fills.
        flat_share = (1.0 - soc) / 0.1
        voltage = 13.8 + 0.6 * (flat_share if flat_share < 1.0 else 1.0)
    else:
        voltage = open_circuit_voltage(soc) + current * _BATTERY_OHM
    volts_lo, volts_hi = _VOLTS
    voltage = volts_lo if voltage < volts_lo else volts_hi if voltage > volts_hi else voltage
    return BatteryState(soc, voltage, current)


# --- tires and brakes

_TIRE_REF_K = 293.15  # placard pressures are set cold, at about 20 °C
_ATMOSPHERE_KPA = 101.325
_COAST_DECEL_MS2 = 0.3  # drag and engine braking supply this much; the pads do the rest
_PAD_WEAR_PCT_PER_J_KG = 2.0e-5  # ~50 000 km of mixed driving per set of pads


def tire_pressure_kpa(placard_kpa: float, tire_temp_rise_c: float, leak_kpa: float) -> float:
    """Gauge pressure of a tire set to placard cold, minus a leak, warmed by `tire_temp_rise_c`."""
    held_kpa = placard_kpa - leak_kpa
    cold_abs = (held_kpa if held_kpa > 0.0 else 0.0) + _ATMOSPHERE_KPA
    # Ideal gas at constant volume: absolute pressure tracks absolute temperature (~0.45 %/°C gauge).
    hot_abs = cold_abs * (_TIRE_REF_K + tire_temp_rise_c) / _TIRE_REF_K
    return _clamp(hot_abs - _ATMOSPHERE_KPA, *_TIRE_KPA)


def brake_pad_wear_step(wear_pct: float, dt_s: float, decel_ms2: float, speed_ms: float) -> float:
    """Pad wear (%, 100 = worn) after braking for `dt_s` at `decel_ms2` (> 0 while braking)."""
    friction_decel = max(decel_ms2 - _COAST_DECEL_MS2, 0.0)
    power_per_kg = friction_decel * max(speed_ms, 0.0)  # W/kg the pads turn into heat
    # Hot pads wear faster, so hard stops cost more than their energy alone.
    severity = 1.0 + 0.15 * friction_decel
    wear = wear_pct + _PAD_WEAR_PCT_PER_J_KG * power_per_kg * severity * max(dt_s, 0.0)
    return _clamp(wear, *_PAD_PCT)
