"""The signal catalog: the single source of truth for every signal a car sends.

Validators (`schemas.validate`), Arrow schemas (`schemas.arrow`) and the exported docs
(`fleet schema export`) are all derived from `SIGNALS` in code; nothing else lists signals.

Every MQTT frame is one subsystem of one car at one tick:

    fleet/<vin>/engine  {"vin": "1FLEET00000000042", "ts": 1795316357000, "seq": 17,
                         "schema_version": 1, "engine_rpm": 2150.0, "coolant_temp_c": 91.2, ...}

VSS paths are COVESA Vehicle Signal Specification v5.1 branches.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal

SCHEMA_VERSION = 1

Subsystem = Literal["engine", "transmission", "electronics", "chassis", "infotainment"]
SUBSYSTEMS: tuple[Subsystem, ...] = ("engine", "transmission", "electronics", "chassis", "infotainment")
SignalType = Literal["float", "int", "bool", "string", "string[]"]

# Fields every frame carries besides its signals.
ENVELOPE = ("vin", "ts", "seq", "schema_version")


@dataclasses.dataclass(frozen=True)
class Signal:
    """One signal: where it lives, what it means, and the values it may take."""

    name: str
    subsystem: Subsystem
    vss: str
    unit: str
    type: SignalType
    min: float | None
    max: float | None
    description: str
    allowed: tuple[str, ...] = ()  # closed set of values for string signals


def _s(
    name: str,
    subsystem: Subsystem,
    vss: str,
    unit: str,
    type_: SignalType,
    lo: float | None,
    hi: float | None,
    description: str,
    allowed: tuple[str, ...] = (),
) -> Signal:
    return Signal(name, subsystem, vss, unit, type_, lo, hi, description, allowed)


_ENG = "Vehicle.Powertrain.CombustionEngine"
_TRX = "Vehicle.Powertrain.Transmission"
_AXLE = "Vehicle.Chassis.Axle"
_INFO = "Vehicle.Cabin.Infotainment"

SIGNALS: tuple[Signal, ...] = (
    # --- engine
    _s("engine_running", "engine", f"{_ENG}.IsRunning", "", "bool", None, None, "engine is running"),
    _s("engine_rpm", "engine", f"{_ENG}.Speed", "rpm", "float", 0, 8000, "crankshaft speed"),
    _s(
        "engine_load_pct",
        "engine",
        "Vehicle.OBD.EngineLoad",
        "percent",
        "float",
        0,
        100,
        "calculated engine load",
    ),
    _s(
        "throttle_pct",
        "engine",
        "Vehicle.OBD.ThrottlePosition",
        "percent",
        "float",
        0,
        100,
        "throttle position",
    ),
    _s("coolant_temp_c", "engine", f"{_ENG}.ECT", "celsius", "float", -40, 150, "engine coolant temperature"),
    _s("oil_temp_c", "engine", f"{_ENG}.EOT", "celsius", "float", -40, 180, "engine oil temperature"),
    _s("oil_pressure_kpa", "engine", f"{_ENG}.EOP", "kPa", "float", 0, 1000, "engine oil pressure (gauge)"),
    _s("fuel_rate_lph", "engine", "Vehicle.OBD.FuelRate", "l/h", "float", 0, 60, "instantaneous fuel rate"),
    _s(
        "fuel_used_l",
        "engine",
        "Vehicle.Powertrain.FuelSystem.AccumulatedConsumption",
        "l",
        "float",
        0,
        1e7,
        "fuel used since the car was built (cumulative)",
    ),
    _s(
        "fuel_level_pct",
        "engine",
        "Vehicle.Powertrain.FuelSystem.RelativeLevel",
        "percent",
        "float",
        0,
        100,
        "fuel tank level",
    ),
    _s(
        "intake_air_temp_c",
        "engine",
        "Vehicle.OBD.IntakeTemp",
        "celsius",
        "float",
        -40,
        120,
        "intake air temperature",
    ),
    _s("maf_gps", "engine", "Vehicle.OBD.MAF", "g/s", "float", 0, 400, "mass air flow"),
    _s(
        "engine_hours",
        "engine",
        f"{_ENG}.EngineHours",
        "h",
        "float",
        0,
        1e6,
        "accumulated engine running time",
    ),
    # --- transmission
    _s(
        "gear",
        "transmission",
        f"{_TRX}.CurrentGear",
        "",
        "int",
        -1,
        8,
        "engaged gear (-1 reverse, 0 neutral)",
    ),
    _s(
        "selected_gear",
        "transmission",
        f"{_TRX}.SelectedGear",
        "",
        "int",
        -1,
        127,
        "selector position (126 park, 127 drive, -1 reverse, 0 neutral)",
    ),
    _s(
        "trans_temp_c",
        "transmission",
        f"{_TRX}.Temperature",
        "celsius",
        "float",
        -40,
        180,
        "transmission fluid temp",
    ),
    _s(
        "clutch_engagement_pct",
        "transmission",
        f"{_TRX}.ClutchEngagement",
        "percent",
        "float",
        0,
        100,
        "torque converter / clutch lock-up",
    ),
    _s("park_lock", "transmission", f"{_TRX}.IsParkLockEngaged", "", "bool", None, None, "park lock engaged"),
    _s(
        "performance_mode",
        "transmission",
        f"{_TRX}.PerformanceMode",
        "",
        "string",
        None,
        None,
        "drive mode",
        ("NORMAL", "SPORT", "ECONOMY"),
    ),
    # --- electronics
    _s(
        "ignition",
        "electronics",
        "Vehicle.LowVoltageSystemState",
        "",
        "string",
        None,
        None,
        "ignition / low-voltage system state",
        ("LOCK", "OFF", "ACC", "ON", "START"),
    ),
    _s(
        "battery_voltage_v",
        "electronics",
        "Vehicle.LowVoltageBattery.CurrentVoltage",
        "V",
        "float",
        0,
        20,
        "12 V battery voltage",
    ),
    _s(
        "battery_current_a",
        "electronics",
        "Vehicle.LowVoltageBattery.CurrentCurrent",
        "A",
        "float",
        -300,
        300,
        "12 V battery current (positive: charging)",
    ),
    _s(
        "dtc_list",
        "electronics",
        "Vehicle.OBD.DTCList",
        "",
        "string[]",
        None,
        None,
        "active diagnostic trouble codes",
    ),
    _s("dtc_count", "electronics", "Vehicle.OBD.Status.DTCCount", "", "int", 0, 255, "number of active DTCs"),
    _s("mil_on", "electronics", "Vehicle.OBD.Status.IsMILOn", "", "bool", None, None, "check-engine lamp on"),
    _s(
        "ambient_temp_c",
        "electronics",
        "Vehicle.Exterior.AirTemperature",
        "celsius",
        "float",
        -50,
        60,
        "outside air",
    ),
    _s(
        "cabin_temp_c",
        "electronics",
        "Vehicle.Cabin.HVAC.AmbientAirTemperature",
        "celsius",
        "float",
        -50,
        80,
        "cabin air",
    ),
    # --- chassis
    _s("speed_kmh", "chassis", "Vehicle.Speed", "km/h", "float", 0, 250, "vehicle speed"),
    _s("odometer_km", "chassis", "Vehicle.TraveledDistance", "km", "float", 0, 2e6, "odometer (cumulative)"),
    _s(
        "accel_long_ms2",
        "chassis",
        "Vehicle.Acceleration.Longitudinal",
        "m/s^2",
        "float",
        -12,
        12,
        "longitudinal acceleration",
    ),
    _s(
        "tire_fl_kpa",
        "chassis",
        f"{_AXLE}.Row1.Wheel.Left.Tire.Pressure",
        "kPa",
        "float",
        0,
        500,
        "front-left tire",
    ),
    _s(
        "tire_fr_kpa",
        "chassis",
        f"{_AXLE}.Row1.Wheel.Right.Tire.Pressure",
        "kPa",
        "float",
        0,
        500,
        "front-right tire",
    ),
    _s(
        "tire_rl_kpa",
        "chassis",
        f"{_AXLE}.Row2.Wheel.Left.Tire.Pressure",
        "kPa",
        "float",
        0,
        500,
        "rear-left tire",
    ),
    _s(
        "tire_rr_kpa",
        "chassis",
        f"{_AXLE}.Row2.Wheel.Right.Tire.Pressure",
        "kPa",
        "float",
        0,
        500,
        "rear-right tire",
    ),
    _s(
        "brake_pad_wear_front_pct",
        "chassis",
        f"{_AXLE}.Row1.Wheel.Left.Brake.PadWear",
        "percent",
        "float",
        0,
        100,
        "front brake pad wear (100 = worn out)",
    ),
    _s(
        "brake_pad_wear_rear_pct",
        "chassis",
        f"{_AXLE}.Row2.Wheel.Left.Brake.PadWear",
        "percent",
        "float",
        0,
        100,
        "rear brake pad wear (100 = worn out)",
    ),
    _s(
        "brake_pedal_pct",
        "chassis",
        "Vehicle.Chassis.Brake.PedalPosition",
        "percent",
        "float",
        0,
        100,
        "brake pedal",
    ),
    _s(
        "steering_angle_deg",
        "chassis",
        "Vehicle.Chassis.SteeringWheel.Angle",
        "degrees",
        "float",
        -720,
        720,
        "steering wheel angle",
    ),
    # --- infotainment (the head unit also owns GPS)
    _s(
        "lat", "infotainment", "Vehicle.CurrentLocation.Latitude", "degrees", "float", -90, 90, "GPS latitude"
    ),
    _s(
        "lon",
        "infotainment",
        "Vehicle.CurrentLocation.Longitude",
        "degrees",
        "float",
        -180,
        180,
        "GPS longitude",
    ),
    _s(
        "heading_deg",
        "infotainment",
        "Vehicle.CurrentLocation.Heading",
        "degrees",
        "float",
        0,
        360,
        "GPS heading",
    ),
    _s(
        "altitude_m",
        "infotainment",
        "Vehicle.CurrentLocation.Altitude",
        "m",
        "float",
        -500,
        9000,
        "GPS altitude",
    ),
    _s(
        "nav_dest_lat",
        "infotainment",
        f"{_INFO}.Navigation.DestinationSet.Latitude",
        "degrees",
        "float",
        -90,
        90,
        "navigation destination latitude",
    ),
    _s(
        "nav_dest_lon",
        "infotainment",
        f"{_INFO}.Navigation.DestinationSet.Longitude",
        "degrees",
        "float",
        -180,
        180,
        "navigation destination longitude",
    ),
    _s(
        "media_source",
        "infotainment",
        f"{_INFO}.Media.Played.Source",
        "",
        "string",
        None,
        None,
        "media source playing",
        ("SILENT", "FM", "DAB", "USB", "BLUETOOTH", "INTERNET"),
    ),
    _s("volume_pct", "infotainment", f"{_INFO}.Media.Volume", "percent", "int", 0, 100, "media volume"),
)

BY_NAME: Mapping[str, Signal] = {s.name: s for s in SIGNALS}
BY_SUBSYSTEM: Mapping[Subsystem, tuple[Signal, ...]] = {
    sub: tuple(s for s in SIGNALS if s.subsystem == sub) for sub in SUBSYSTEMS
}
