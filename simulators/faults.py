"""Injected faults: what each one does to a car, and the ground truth it leaves behind.

A fault is scheduled by a rate (`--fault-rate`, faults per car per hour of vehicle time) or a
scenario file. While active it changes the car model (a stuck thermostat, a leaking tire);
the car records its label: which alert rule should fire, when the fault started and ended, and
`onset_ts`, the first tick at which the signal actually met the rule's condition (what a
detection delay is measured from).

    {"vin": "1FLEET00000000007", "fault": "tire_puncture", "rule": "tire_puncture",
     "subsystem": "chassis", "start_ts": ..., "onset_ts": ..., "end_ts": ..., "detail": "tire_rl_kpa"}
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import yaml

FaultKind = Literal[
    "overheat_thermostat",
    "overheat_coolant_leak",
    "oil_pressure_loss",
    "alternator_failure",
    "tire_slow_leak",
    "tire_puncture",
    "brake_pads_worn",
    "dtc_appeared",
    "telematics_silent",
]

# The thresholds each fault's signature is checked against: the hot path's default rules.
COOLANT_WARN_C = 110.0
OIL_MIN_IDLE_KPA = 70.0
OIL_MIN_PER_1000_RPM_KPA = 45.0  # rpm-dependent minimum above idle: 70 + 45 per 1000 rpm over 1000
BATTERY_RUNNING_MIN_V = 13.0
TIRE_LOW_FRACTION = 0.75
PUNCTURE_KPA_PER_MIN = 20.0
BRAKE_PAD_WORN_PCT = 80.0
CRITICAL_DTCS = ("P0217", "P0524", "P0300")
OTHER_DTCS = ("P0171", "P0420", "P0442", "P0128")
TIRES = ("tire_fl_kpa", "tire_fr_kpa", "tire_rl_kpa", "tire_rr_kpa")


@dataclasses.dataclass(frozen=True)
class FaultSpec:
    """A kind of fault: the rule it should trigger and how long it lasts (s, vehicle time)."""

    kind: FaultKind
    rule: str
    subsystem: str
    duration_s: tuple[float, float]
    description: str


FAULTS: dict[FaultKind, FaultSpec] = {
    f.kind: f
    for f in (
        FaultSpec("overheat_thermostat", "coolant_temp", "engine", (600, 1200), "thermostat stuck closed"),
        FaultSpec("overheat_coolant_leak", "coolant_temp", "engine", (600, 1200), "coolant leak"),
        FaultSpec("oil_pressure_loss", "oil_pressure", "engine", (300, 900), "oil pump failing"),
        FaultSpec(
            "alternator_failure", "battery_voltage", "electronics", (300, 900), "alternator not charging"
        ),
        FaultSpec("tire_slow_leak", "tire_pressure_low", "chassis", (900, 1800), "slow tire leak"),
        FaultSpec("tire_puncture", "tire_puncture", "chassis", (300, 600), "tire puncture"),
        FaultSpec("brake_pads_worn", "brake_pad_wear", "chassis", (600, 1200), "brake pads worn past 80%"),
        FaultSpec("dtc_appeared", "dtc_new", "electronics", (300, 900), "diagnostic trouble code set"),
        FaultSpec("telematics_silent", "stale", "electronics", (60, 240), "telematics unit stops sending"),
    )
}
FAULT_KINDS: tuple[FaultKind, ...] = tuple(FAULTS)


@dataclasses.dataclass
class ActiveFault:
    """One fault on one car, with its label fields filled in as the car drives."""

    kind: FaultKind
    start_ts: int
    end_ts: int
    detail: str = ""  # which tire, which DTC
    severity: float = 1.0  # leak rate scale etc.
    onset_ts: int | None = None

    def label(self, vin: str) -> dict[str, Any]:
        """The ground-truth record for the labels file."""
        spec = FAULTS[self.kind]
        return {
            "vin": vin,
            "fault": self.kind,
            "rule": spec.rule,
            "subsystem": spec.subsystem,
            "start_ts": self.start_ts,
            "onset_ts": self.onset_ts,
            "end_ts": self.end_ts,
            "detail": self.detail,
        }


def oil_pressure_minimum(rpm: float) -> float:
    """The rpm-dependent oil pressure floor: 70 kPa at idle, rising above 1000 rpm."""
    return OIL_MIN_IDLE_KPA + max(0.0, rpm - 1000.0) / 1000.0 * OIL_MIN_PER_1000_RPM_KPA


@dataclasses.dataclass(frozen=True)
class ScenarioEntry:
    """One scheduled fault from a scenario file."""

    car: int  # index into the fleet (0-based)
    fault: FaultKind
    at_s: float  # vehicle seconds after the simulation starts
    duration_s: float | None = None
    detail: str = ""


def load_scenario(path: Path) -> list[ScenarioEntry]:
    """Parse a scenario YAML: a list of {car, fault, at_s, duration_s?, detail?}."""
    from services.common.errors import ConfigError  # the one exception tree

    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read scenario {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    faults = doc.get("faults") if isinstance(doc, dict) else None
    if not isinstance(faults, list):
        raise ConfigError(f"{path}: expected 'faults:' with a list of {{car, fault, at_s}}")
    entries = []
    for i, item in enumerate(faults):
        where = f"{path}: faults[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: expected a mapping")
        kind = item.get("fault")
        if kind not in FAULTS:
            raise ConfigError(f"{where}: fault {kind!r} is not one of {', '.join(FAULT_KINDS)}")
        car, at_s = item.get("car"), item.get("at_s")
        if not isinstance(car, int) or car < 0:
            raise ConfigError(f"{where}: car must be a fleet index >= 0")
        if not isinstance(at_s, int | float) or at_s < 0:
            raise ConfigError(f"{where}: at_s must be seconds >= 0")
        duration = item.get("duration_s")
        if duration is not None and (not isinstance(duration, int | float) or duration <= 0):
            raise ConfigError(f"{where}: duration_s must be > 0")
        entries.append(
            ScenarioEntry(
                car,
                kind,
                float(at_s),
                None if duration is None else float(duration),
                str(item.get("detail", "")),
            )
        )
    return entries
