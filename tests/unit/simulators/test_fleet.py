"""The fleet model: reproducible, valid, and its faults leave the signatures their labels claim."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict

import pytest

from schemas.validate import Valid, validate_message
from simulators.faults import (
    BATTERY_RUNNING_MIN_V,
    BRAKE_PAD_WORN_PCT,
    COOLANT_WARN_C,
    FAULT_KINDS,
    FAULTS,
    TIRE_LOW_FRACTION,
    ScenarioEntry,
    oil_pressure_minimum,
)
from simulators.fleet import DEFAULT_START_TS, Fleet, FleetConfig
from simulators.physics import VEHICLE_CLASSES
from simulators.simulation import encode
from simulators.vehicle import FAULT_COOLDOWN_MS


def run_bytes(seed: int, ticks: int = 300, cars: int = 5) -> list[bytes]:
    fleet = Fleet(FleetConfig(cars=cars, seed=seed, fault_rate=20.0))
    return [encode(frame) for _ in range(ticks) for _, _, frame in fleet.step()]


def test_same_seed_gives_byte_identical_frames():
    assert run_bytes(7) == run_bytes(7)


def test_different_seeds_differ():
    assert run_bytes(7, ticks=50) != run_bytes(8, ticks=50)


@pytest.fixture(scope="module")
def hour_of_faults():
    """20 cars, one hour of vehicle time, every fault kind scheduled on its own car."""
    scenario = [ScenarioEntry(car=i, fault=kind, at_s=600.0) for i, kind in enumerate(FAULT_KINDS)]
    fleet = Fleet(FleetConfig(cars=20, seed=5, scenario=scenario))
    frames = []
    for _ in range(3600):
        frames.extend(fleet.step())
    fleet.finish()
    return fleet, frames


def test_every_generated_frame_validates(hour_of_faults):
    _, frames = hour_of_faults
    now = frames[-1][2]["ts"]
    for vin, subsystem, frame in frames:
        result = validate_message(f"fleet/{vin}/{subsystem}", encode(frame), now_ms=now)
        assert isinstance(result, Valid), (vin, subsystem, result)


def test_seq_counts_up_by_one_per_car_and_subsystem(hour_of_faults):
    _, frames = hour_of_faults
    last: dict[tuple[str, str], int] = {}
    for vin, subsystem, frame in frames:
        assert frame["seq"] == last.get((vin, subsystem), 0) + 1
        last[(vin, subsystem)] = frame["seq"]


def test_every_scheduled_fault_is_labelled_with_its_rule(hour_of_faults):
    fleet, _ = hour_of_faults
    labels = fleet.labels()
    assert sorted(label["fault"] for label in labels) == sorted(FAULT_KINDS)
    for label in labels:
        assert label["rule"] == FAULTS[label["fault"]].rule
        assert label["start_ts"] < label["end_ts"]
        assert label["onset_ts"] is not None, label
        assert label["start_ts"] <= label["onset_ts"] <= label["end_ts"], label


def _series(frames, vin, subsystem, start, end):
    return [f for v, s, f in frames if v == vin and s == subsystem and start <= f["ts"] <= end]


def test_each_fault_shows_the_signature_its_label_claims(hour_of_faults):
    fleet, frames = hour_of_faults
    for label in fleet.labels():
        vin, start, onset, end = label["vin"], label["start_ts"], label["onset_ts"], label["end_ts"]
        car = next(c for c in fleet.cars if c.profile.vin == vin)
        placard = VEHICLE_CLASSES[car.profile.vehicle_class].tire_placard_kpa
        fault = label["fault"]
        if fault == "telematics_silent":
            assert not [f for v, _, f in frames if v == vin and start <= f["ts"] < end]
            continue
        sub = label["subsystem"]
        at_onset = _series(frames, vin, sub, onset, onset)
        assert at_onset, label
        f = at_onset[0]
        if fault.startswith("overheat"):
            assert f["coolant_temp_c"] > COOLANT_WARN_C
        elif fault == "oil_pressure_loss":
            assert f["engine_running"] and f["oil_pressure_kpa"] < oil_pressure_minimum(f["engine_rpm"])
        elif fault == "alternator_failure":
            assert f["ignition"] == "ON" and f["battery_voltage_v"] < BATTERY_RUNNING_MIN_V
        elif fault == "tire_slow_leak":
            assert f[label["detail"]] <= placard * TIRE_LOW_FRACTION
        elif fault == "tire_puncture":
            window = _series(frames, vin, sub, onset, onset + 60_000)
            drop_per_min = window[0][label["detail"]] - window[-1][label["detail"]]
            assert drop_per_min > 20.0
        elif fault == "brake_pads_worn":
            assert f["brake_pad_wear_front_pct"] >= BRAKE_PAD_WORN_PCT
        elif fault == "dtc_appeared":
            assert label["detail"] in f["dtc_list"]
            before = _series(frames, vin, sub, start - 5_000, start - 1)
            assert all(label["detail"] not in b["dtc_list"] for b in before)


def test_healthy_cars_never_meet_any_alert_condition(hour_of_faults):
    fleet, frames = hour_of_faults
    faulty = {label["vin"] for label in fleet.labels()}
    healthy = [(v, s, f) for v, s, f in frames if v not in faulty]
    assert healthy
    for vin, subsystem, f in healthy:
        if subsystem == "engine":
            assert f["coolant_temp_c"] <= COOLANT_WARN_C, (vin, f)
            if f["engine_running"]:
                assert f["oil_pressure_kpa"] >= oil_pressure_minimum(f["engine_rpm"]), (vin, f)
        elif subsystem == "electronics":
            if f["ignition"] == "ON":
                assert f["battery_voltage_v"] >= BATTERY_RUNNING_MIN_V, (vin, f)
            assert f["dtc_list"] == []
        elif subsystem == "chassis":
            assert f["brake_pad_wear_front_pct"] < BRAKE_PAD_WORN_PCT
            for tire in ("tire_fl_kpa", "tire_fr_kpa", "tire_rl_kpa", "tire_rr_kpa"):
                assert f[tire] > 150.0  # well above 75% of any class's placard


def test_manifest_fuel_truth_matches_the_frames(hour_of_faults):
    fleet, frames = hour_of_faults
    manifest = fleet.manifest()
    assert {c["driver_style"] for c in manifest["cars"]} == {"eco", "normal", "aggressive"}
    for car in manifest["cars"]:
        engine = [f for v, s, f in frames if v == car["vin"] and s == "engine"]
        chassis = [f for v, s, f in frames if v == car["vin"] and s == "chassis"]
        if not engine or car["true_l_per_100km"] is None:
            continue
        litres = engine[-1]["fuel_used_l"] - engine[0]["fuel_used_l"]
        km = chassis[-1]["odometer_km"] - chassis[0]["odometer_km"]
        assert km > 0
        assert litres / km * 100 == pytest.approx(car["true_l_per_100km"], rel=0.05)


def test_frames_are_json_with_catalog_key_order():
    fleet = Fleet(FleetConfig(cars=1, seed=1))
    _, _, frame = fleet.step()[0]
    assert list(json.loads(encode(frame)))[:4] == ["vin", "ts", "seq", "schema_version"]


# --- one fault at a time, well apart ----------------------------------------------------------


@pytest.fixture(scope="module")
def busy_fleet():
    """8 cars for 3 hours at 30 faults per car-hour: each takes a new fault as soon as it may."""
    fleet = Fleet(FleetConfig(cars=8, seed=3, fault_rate=30.0))
    for _ in range(3 * 3600):
        fleet.step()
    fleet.finish()
    return fleet


def by_car(labels):
    cars = defaultdict(list)
    for label in labels:  # ordered by start_ts
        cars[label["vin"]].append(label)
    return cars


def test_no_fault_starts_within_the_cool_down_after_a_repair(busy_fleet):
    gaps = [
        later["start_ts"] - earlier["end_ts"]
        for labels in by_car(busy_fleet.labels()).values()
        for earlier, later in itertools.pairwise(labels)
    ]
    assert len(gaps) >= 20
    assert min(gaps) >= FAULT_COOLDOWN_MS
    assert min(gaps) < FAULT_COOLDOWN_MS + 5 * 60_000  # not vacuous: the rate presses against it


def test_every_label_has_start_onset_end_in_order(busy_fleet, hour_of_faults):
    labels = busy_fleet.labels() + hour_of_faults[0].labels()
    assert {label["fault"] for label in labels} == set(FAULT_KINDS)
    for label in labels:
        assert label["start_ts"] <= label["end_ts"], label
        if label["onset_ts"] is not None:
            assert label["start_ts"] <= label["onset_ts"] <= label["end_ts"], label


def late_onset_fleet() -> Fleet:
    """One car with a fault planned to last 1 s whose signature takes minutes to show."""
    scenario = [ScenarioEntry(car=0, fault="overheat_thermostat", at_s=1.0, duration_s=1.0)]
    return Fleet(FleetConfig(cars=1, seed=1, scenario=scenario))


def test_finish_ends_a_fault_held_past_its_planned_end_after_its_onset():
    # The fault is held until MIN_FAULT_HOLD_MS past its onset, long after its planned end; a run
    # ending inside that hold closes the label at the last tick, not at the planned end.
    fleet = late_onset_fleet()
    fault = None
    for _ in range(3600):
        fleet.step()
        fault = fleet.cars[0].fault
        if fault is not None and fault.onset_ts is not None:
            break
    assert fault is not None and fault.onset_ts is not None
    assert fault.onset_ts > fault.start_ts + 1000  # its planned end
    fleet.step()
    fleet.finish()
    (label,) = fleet.labels()
    assert label["start_ts"] < label["onset_ts"] < label["end_ts"] == fleet.ts


def test_finish_ends_a_fault_without_onset_at_the_last_tick():
    fleet = late_onset_fleet()
    while fleet.cars[0].fault is None:
        fleet.step()
    fleet.step()
    fleet.finish()
    (label,) = fleet.labels()
    assert label["onset_ts"] is None
    assert label["start_ts"] < label["end_ts"] == fleet.ts


def test_a_scenario_entry_waits_until_its_car_can_take_a_fault():
    scenario = [
        ScenarioEntry(car=0, fault="dtc_appeared", at_s=1.0, duration_s=60.0, detail="P0420"),
        ScenarioEntry(car=0, fault="tire_puncture", at_s=2.0, duration_s=60.0, detail="tire_fl_kpa"),
        ScenarioEntry(car=5, fault="tire_puncture", at_s=2.0),  # no such car: ignored
    ]
    fleet = Fleet(FleetConfig(cars=1, seed=1, scenario=scenario))
    car = fleet.cars[0]
    phase_at: dict[int, str] = {}  # the phase a fault decision sees: the car's before the tick
    for _ in range(3600):
        phase = car.phase
        fleet.step()
        phase_at[fleet.ts] = phase
    fleet.finish()
    first, second = fleet.labels()
    # Both happen, in scenario order: the first once the car (parked at 1 s) drives off...
    assert (first["fault"], second["fault"]) == ("dtc_appeared", "tire_puncture")
    assert phase_at[DEFAULT_START_TS + 1000] == "parked"
    assert first["start_ts"] > DEFAULT_START_TS + 1000
    assert phase_at[first["start_ts"]] == "driving"
    # ...the second only after the first's repair and the cool-down, also while driving.
    assert second["start_ts"] >= first["end_ts"] + FAULT_COOLDOWN_MS
    assert phase_at[second["start_ts"]] == "driving"
    assert second["onset_ts"] is not None
