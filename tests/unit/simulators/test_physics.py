import dataclasses
import math
from typing import Any

import pytest

from simulators.physics import (
    VEHICLE_CLASSES,
    BatteryState,
    ThermalState,
    VehicleClass,
    brake_pad_wear_step,
    fuel_rate_lph,
    gear_rpm,
    oil_pressure_kpa,
    powertrain,
    select_gear,
    step_battery,
    step_thermal,
    tire_pressure_kpa,
)

MIDSIZE = VEHICLE_CLASSES["midsize"]

# Steady-speed consumption of a ~1.5 t petrol sedan (km/h -> L/100 km), the model's acceptance curve.
REFERENCE_L_100KM = {50: 5.3, 60: 5.1, 89: 5.6, 105: 6.3, 121: 7.2}


def l_per_100km(vc: VehicleClass, kmh: float) -> float:
    return fuel_rate_lph(vc, kmh / 3.6, 0.0) / kmh * 100.0


@pytest.mark.parametrize(("kmh", "expected"), REFERENCE_L_100KM.items())
def test_midsize_steady_speed_consumption_matches_reference(kmh, expected):
    assert l_per_100km(MIDSIZE, kmh) == pytest.approx(expected, abs=0.5)


def test_midsize_consumption_is_u_shaped_with_minimum_near_60_kmh():
    curve = {kmh: l_per_100km(MIDSIZE, kmh) for kmh in range(30, 131, 10)}
    assert min(curve, key=curve.__getitem__) in (60, 70)
    assert curve[30] > curve[60] < curve[130]


def test_idle_fuel_is_about_1_4_lph():
    assert fuel_rate_lph(MIDSIZE, 0.0, 0.0) == pytest.approx(1.4, abs=0.2)


@pytest.mark.parametrize("kmh", [50, 90, 120])
def test_compact_burns_less_than_midsize_less_than_suv(kmh):
    compact, midsize, suv = (l_per_100km(VEHICLE_CLASSES[n], kmh) for n in ("compact", "midsize", "suv"))
    assert compact < midsize < suv


def test_every_class_is_internally_consistent():
    for name, vc in VEHICLE_CLASSES.items():
        assert vc.name == name
        assert list(vc.gear_ratios) == sorted(vc.gear_ratios, reverse=True)
        assert 0 < vc.idle_rpm < vc.max_rpm
        assert 0 < vc.willans_efficiency < 0.5 and 0 < vc.drivetrain_efficiency < 1


def test_acceleration_and_climbing_cost_more_fuel_than_cruising():
    v = 60 / 3.6
    cruise = fuel_rate_lph(MIDSIZE, v, 0.0)
    assert fuel_rate_lph(MIDSIZE, v, 1.5) > cruise * 2
    assert fuel_rate_lph(MIDSIZE, v, 0.0, grade=0.05) > cruise * 2


def test_decelerating_at_speed_cuts_fuel_off():
    state = powertrain(MIDSIZE, 80 / 3.6, -1.5)
    assert state.wheel_power_kw < 0
    assert state.fuel_rate_lph == pytest.approx(0.0, abs=0.01)
    assert state.engine_load_pct == 0.0 and state.throttle_pct == 0.0
    assert state.gear > 0 and state.engine_rpm > MIDSIZE.idle_rpm


def test_decelerating_slowly_idles_instead_of_cutting_fuel():
    state = powertrain(MIDSIZE, 10 / 3.6, -1.5)
    assert state.fuel_rate_lph >= fuel_rate_lph(MIDSIZE, 0.0, 0.0) * 0.95


def test_stopped_engine_is_in_neutral_at_idle():
    state = powertrain(MIDSIZE, 0.0, 0.0)
    assert state.gear == 0
    assert state.engine_rpm == MIDSIZE.idle_rpm
    assert state.wheel_power_kw == 0.0
    assert 0 < state.engine_load_pct < 50 and state.maf_gps > 0


@pytest.mark.parametrize("name", sorted(VEHICLE_CLASSES))
def test_rpm_stays_between_idle_and_redline_and_gear_rises_with_speed(name):
    vc = VEHICLE_CLASSES[name]
    last_gear = 0
    for kmh in range(0, 201, 5):
        for accel in (-3.0, 0.0, 1.0, 3.0):
            state = powertrain(vc, kmh / 3.6, accel)
            assert vc.idle_rpm <= state.engine_rpm <= vc.max_rpm
            assert 0 <= state.engine_load_pct <= 100 and 0 <= state.throttle_pct <= 100
            assert 0 <= state.fuel_rate_lph <= 60 and 0 <= state.maf_gps <= 400
        gear = select_gear(vc, kmh / 3.6)
        assert gear >= last_gear
        last_gear = gear
    assert last_gear == len(vc.gear_ratios)


def test_rpm_follows_gear_ratio_final_drive_and_wheel_radius():
    v = 100 / 3.6
    state = powertrain(MIDSIZE, v, 0.0)
    expected = v / MIDSIZE.wheel_radius_m * 60 / (2 * math.pi) * MIDSIZE.gear_ratios[state.gear - 1]
    assert state.engine_rpm == pytest.approx(expected * MIDSIZE.final_drive)
    assert gear_rpm(MIDSIZE, v, state.gear) == pytest.approx(state.engine_rpm)


def test_higher_shift_rpm_holds_lower_gears_and_burns_more():
    v = 50 / 3.6
    eager = powertrain(MIDSIZE, v, 0.0, shift_rpm=1600)
    sporty = powertrain(MIDSIZE, v, 0.0, shift_rpm=3000)
    assert sporty.gear < eager.gear and sporty.engine_rpm > eager.engine_rpm
    assert sporty.fuel_rate_lph > eager.fuel_rate_lph


def test_hard_acceleration_kicks_down():
    v = 100 / 3.6
    assert powertrain(MIDSIZE, v, 3.0).gear < powertrain(MIDSIZE, v, 0.0).gear


# --- thermal


def drive(
    vc: VehicleClass,
    state: ThermalState,
    minutes: float,
    kmh: float,
    ambient_c: float = 20.0,
    dt_s: float = 1.0,
    **faults: Any,
) -> list[ThermalState]:
    pt = powertrain(vc, kmh / 3.6, 0.0)
    trace = []
    for _ in range(int(minutes * 60 / dt_s)):
        state = step_thermal(
            vc, state, dt_s, pt.engine_power_kw, pt.engine_rpm, True, ambient_c, kmh / 3.6, **faults
        )
        trace.append(state)
    return trace


def test_engine_warms_up_within_ten_minutes_and_thermostat_holds_it():
    trace = drive(MIDSIZE, ThermalState.soaked(20.0), 60, 60)
    assert 85 <= trace[10 * 60 - 1].coolant_c <= 100
    assert max(s.coolant_c for s in trace) < 105
    end = trace[-1]
    assert 88 <= end.coolant_c <= 95
    assert 95 <= end.oil_c <= 110
    assert 70 <= end.trans_c <= 90


def test_oil_lags_coolant_while_warming_up():
    early = drive(MIDSIZE, ThermalState.soaked(20.0), 3, 60)[-1]
    assert early.oil_c < early.coolant_c


@pytest.mark.parametrize("name", sorted(VEHICLE_CLASSES))
def test_every_class_regulates_on_the_highway(name):
    end = drive(VEHICLE_CLASSES[name], ThermalState.soaked(30.0), 30, 120, ambient_c=30.0)[-1]
    assert 88 <= end.coolant_c <= 97


@pytest.mark.parametrize("name", sorted(VEHICLE_CLASSES))
def test_every_radiator_carries_half_the_rated_power_on_a_hot_day(name):
    # The sizing rule: an hour at half the rated power (4000 rpm, highway airflow, 40 °C) and
    # the thermostat, fully open at 95 °C, is still regulating.
    vc = VEHICLE_CLASSES[name]
    state = ThermalState.soaked(40.0)
    for _ in range(60 * 60):
        state = step_thermal(vc, state, 1.0, 0.5 * vc.max_power_kw, 4000.0, True, 40.0, 130 / 3.6)
    assert 88 <= state.coolant_c < 95
    assert state.trans_c < 100


@pytest.mark.parametrize("name", sorted(VEHICLE_CLASSES))
def test_every_class_holds_a_long_climb_on_a_hot_day(name):
    # 130 km/h up a 4 % grade at 40 °C, revving to 3200 rpm: ~45 % of rated power for half an
    # hour, more than any load the drivers sustain. The radiator has capacity to spare (the
    # thermostat, fully open at 95 °C, is still regulating) and the ATF cooler keeps up.
    vc = VEHICLE_CLASSES[name]
    pt = powertrain(vc, 130 / 3.6, 0.0, 0.04, shift_rpm=3200.0)
    assert pt.engine_power_kw > 0.35 * vc.max_power_kw
    state = ThermalState.soaked(40.0)
    for _ in range(30 * 60):
        state = step_thermal(vc, state, 1.0, pt.engine_power_kw, pt.engine_rpm, True, 40.0, 130 / 3.6)
    assert 88 <= state.coolant_c < 95
    assert state.trans_c < 100


@pytest.mark.parametrize("name", sorted(VEHICLE_CLASSES))
def test_the_fan_cools_a_hot_engine_idling_on_a_hot_day(name):
    # Stuck in traffic after a hard run: no ram air, the fan pulls the coolant back down.
    vc = VEHICLE_CLASSES[name]
    pt = powertrain(vc, 0.0, 0.0)
    trace = [ThermalState(100.0, 115.0, 95.0)]
    for _ in range(20 * 60):
        trace.append(step_thermal(vc, trace[-1], 1.0, pt.engine_power_kw, pt.engine_rpm, True, 40.0, 0.0))
    assert max(s.coolant_c for s in trace) <= 100.0
    assert trace[-1].coolant_c < 95


def test_stuck_thermostat_overheats_within_fifteen_minutes():
    trace = drive(MIDSIZE, ThermalState.soaked(20.0), 15, 60, thermostat_stuck_closed=True)
    assert trace[-1].coolant_c > 116
    assert all(b.coolant_c >= a.coolant_c for a, b in zip(trace, trace[1:], strict=False))


def test_coolant_leak_overheats_a_warm_engine_within_minutes():
    trace = drive(MIDSIZE, ThermalState(90.0, 100.0, 80.0), 5, 60, coolant_leak=0.6)
    assert trace[-1].coolant_c > 116


def test_overheating_is_clamped_to_the_catalog_range():
    end = drive(MIDSIZE, ThermalState(140.0, 170.0, 170.0), 30, 120, thermostat_stuck_closed=True)[-1]
    assert end.coolant_c <= 150 and end.oil_c <= 180 and end.trans_c <= 180


def test_engine_cools_towards_ambient_when_off():
    hot = ThermalState(92.0, 100.0, 80.0)
    hour = step_thermal(MIDSIZE, hot, 3600.0, 0.0, 0.0, False, 15.0, 0.0)
    day = step_thermal(MIDSIZE, hot, 24 * 3600.0, 0.0, 0.0, False, 15.0, 0.0)
    assert 15 < hour.coolant_c < hot.coolant_c
    assert hour.oil_c < hot.oil_c and hour.trans_c < hot.trans_c
    assert day.coolant_c == pytest.approx(15.0, abs=1.0)


def test_thermal_step_size_does_not_change_the_result_much():
    fine = drive(MIDSIZE, ThermalState.soaked(20.0), 10, 60, dt_s=1.0)[-1]
    coarse = drive(MIDSIZE, ThermalState.soaked(20.0), 10, 60, dt_s=30.0)[-1]
    assert coarse.coolant_c == pytest.approx(fine.coolant_c, abs=1.0)


# --- oil, battery, tires, brakes


def test_oil_pressure_ranges():
    assert oil_pressure_kpa(MIDSIZE, 0.0, 90.0, False) == 0.0
    assert 100 <= oil_pressure_kpa(MIDSIZE, MIDSIZE.idle_rpm, 100.0, True) <= 200
    assert 250 <= oil_pressure_kpa(MIDSIZE, 3000.0, 100.0, True) <= 450
    assert oil_pressure_kpa(MIDSIZE, 3000.0, 20.0, True) > oil_pressure_kpa(MIDSIZE, 3000.0, 110.0, True)
    assert oil_pressure_kpa(MIDSIZE, 8000.0, -40.0, True) <= 1000


def test_failing_oil_pump_loses_pressure():
    healthy = oil_pressure_kpa(MIDSIZE, MIDSIZE.idle_rpm, 100.0, True)
    worn = oil_pressure_kpa(MIDSIZE, MIDSIZE.idle_rpm, 100.0, True, pump_health=0.3)
    assert worn < 70 < healthy


def test_battery_charges_while_running():
    state = step_battery(BatteryState.resting(0.8), 1.0, True, 2000.0, 25.0)
    assert 13.8 <= state.voltage_v <= 14.4
    assert state.current_a > 0 and state.soc > 0.8


def test_full_battery_floats_while_running():
    state = step_battery(BatteryState.resting(1.0), 1.0, True, 2000.0, 25.0)
    assert 13.8 <= state.voltage_v <= 14.4 and state.current_a == 0.0


def test_battery_rests_when_engine_off():
    state = step_battery(BatteryState.resting(0.9), 1.0, False, 0.0, 0.05)
    assert 12.4 <= state.voltage_v <= 12.7
    assert -1.0 < state.current_a < 0


def test_failed_alternator_drains_the_battery():
    state = BatteryState.resting(0.95)
    state = step_battery(state, 1.0, True, 2000.0, 30.0, alternator_ok=False)
    assert state.voltage_v < 12.5 < 13.0
    assert state.current_a == pytest.approx(-30.0)
    for _ in range(60):
        state = step_battery(state, 60.0, True, 2000.0, 30.0, alternator_ok=False)
    assert state.voltage_v < 12.0 and state.soc < 0.5


def test_dead_battery_stays_within_catalog_range():
    state = BatteryState.resting(0.0)
    for _ in range(10):
        state = step_battery(state, 600.0, True, 2000.0, 300.0, alternator_ok=False)
    assert state.soc == 0.0 and 0 <= state.voltage_v <= 20 and state.current_a >= -300


def test_warm_tires_gain_pressure_leaks_lose_it():
    cold = tire_pressure_kpa(240.0, 0.0, 0.0)
    assert cold == pytest.approx(240.0)
    per_degree = (tire_pressure_kpa(240.0, 20.0, 0.0) - cold) / 20.0 / cold
    assert 0.003 <= per_degree <= 0.005
    assert tire_pressure_kpa(240.0, 0.0, 60.0) == pytest.approx(180.0)
    assert tire_pressure_kpa(240.0, 0.0, 500.0) == 0.0


def test_brake_pads_wear_only_when_braking_and_monotonically():
    assert brake_pad_wear_step(10.0, 1.0, 0.0, 20.0) == 10.0
    assert brake_pad_wear_step(10.0, 1.0, 3.0, 0.0) == 10.0
    wear = 10.0
    for _ in range(100):
        nxt = brake_pad_wear_step(wear, 1.0, 2.0, 15.0)
        assert nxt > wear
        wear = nxt
    assert 0 < brake_pad_wear_step(0.0, 1.0, 2.0, 15.0) < 0.001  # tiny per-second wear
    assert brake_pad_wear_step(99.9999, 3600.0, 9.0, 40.0) == 100.0


def test_hard_stops_wear_pads_faster_than_gentle_ones():
    def stop(decel: float) -> float:
        wear, v, dt = 0.0, 100 / 3.6, 0.1
        while v > 0:
            wear = brake_pad_wear_step(wear, dt, decel, v)
            v -= decel * dt
        return wear

    assert stop(7.0) > stop(2.0) * 1.3


def test_models_are_pure():
    args = (MIDSIZE, 70 / 3.6, 0.4, 0.02)
    assert powertrain(*args) == powertrain(*args)
    with pytest.raises(dataclasses.FrozenInstanceError):
        MIDSIZE.mass_kg = 1.0  # type: ignore[misc]
