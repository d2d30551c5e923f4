"""Every rule: raise, hold, clear, no flapping in the deadband, out-of-order frames, escalation.

Frames are built by hand at 1 Hz of vehicle time; `feed` returns the events with the second
(after T0) of the frame that produced them.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterable
from typing import Any

import pytest

from services.hot.config import (
    BatteryConfig,
    BrakePadConfig,
    DtcConfig,
    OilPressureConfig,
    PunctureConfig,
    RulesConfig,
    StaleConfig,
    TirePressureConfig,
)
from services.hot.rules import (
    TIRES,
    BatteryRule,
    BrakePadRule,
    DtcRule,
    Event,
    FrameView,
    OilPressureRule,
    Reading,
    StaleRule,
    Subject,
    ThresholdRule,
    Timing,
    TireRules,
    debounce,
    number,
)

T0 = 1_795_000_000_000
CONFIG = RulesConfig()


def at(seconds: float) -> int:
    return T0 + round(seconds * 1000)


def feed(rule: Any, rows: Iterable[tuple[float, dict[str, Any]]], state=None, **view):
    """Step `rule` through (second, signals) rows; (state, [(second, event)])."""
    events: list[tuple[float, Event]] = []
    for second, signals in rows:
        state, new = rule.step(state, FrameView(at(second), signals, **view))
        events += [(second, e) for e in new]
    return state, events


def summary(events):
    return [(s, e.status, e.severity) for s, e in events]


def coolant(values: dict[range | tuple[int, ...], float]) -> list[tuple[float, dict[str, Any]]]:
    """Rows of coolant_temp_c: {range(0, 40): 112.0, ...} in order of the ranges."""
    return [(s, {"coolant_temp_c": v}) for span, v in values.items() for s in span]


# --- the debouncer ----------------------------------------------------------------------------

SUBJECT = Subject("test", "thing", " u", "warning", Timing(on_delay_ms=3000, off_delay_ms=2000))


def test_debounce_raises_after_the_on_delay_and_clears_after_the_off_delay():
    state, out = None, []
    levels = [1, 1, 1, 1, 1, 0, 0, 0, 0]
    for i, level in enumerate(levels):
        state, ev = debounce(state, at(i), Reading(level, level == 0, float(i), 1.0, 0.5), SUBJECT)
        out += [(i, e.status) for e in ev]
    assert out == [(3, "raised"), (7, "cleared")]
    assert state == {}  # idle again: nothing left in the state


def test_debounce_never_mutates_its_input():
    state, _ = debounce(None, at(0), Reading(1, False, 1.0, 1.0, 0.5), SUBJECT)
    frozen = copy.deepcopy(state)
    debounce(state, at(5), Reading(1, False, 1.0, 1.0, 0.5), SUBJECT)
    debounce(state, at(5), Reading(0, True, 0.0, 1.0, 0.5), SUBJECT)
    assert state == frozen


def test_a_suppressed_episode_is_quiet_from_raise_to_clear():
    state, out = None, []
    for i, level in enumerate([1, 1, 1, 1, 1, 0, 0, 0, 0]):
        state, ev = debounce(state, at(i), Reading(level, level == 0), SUBJECT, suppressed=i < 4)
        out += ev
        if i == 4:
            assert state["episode"]["quiet"] is True
    assert out == []
    assert state == {}


# --- coolant_temp / trans_temp: thresholds with hysteresis -----------------------------------


@pytest.fixture
def coolant_rule() -> ThresholdRule:
    return ThresholdRule.coolant(CONFIG)


def test_coolant_raises_a_warning_after_30_s_above_110(coolant_rule):
    _, events = feed(coolant_rule, coolant({range(0, 5): 100.0, range(5, 40): 111.0}))
    assert summary(events) == [(35, "raised", "warning")]
    event = events[0][1]
    assert (event.rule, event.started_at, event.ts) == ("coolant_temp", at(5), at(35))
    assert (event.value, event.threshold) == (111.0, 110.0)
    assert "coolant temperature 111 °C above 110 °C" in event.message


def test_coolant_does_not_raise_before_the_on_delay(coolant_rule):
    _, events = feed(coolant_rule, coolant({range(0, 30): 111.0, range(30, 200): 104.0}))
    assert events == []


def test_exactly_110_is_not_above_the_warning(coolant_rule):
    _, events = feed(coolant_rule, coolant({range(0, 100): 110.0}))
    assert events == []


def test_coolant_holds_without_repeating_the_raise(coolant_rule):
    _, events = feed(coolant_rule, coolant({range(0, 300): 112.0}))
    assert summary(events) == [(30, "raised", "warning")]


def test_coolant_clears_below_105_held_60_s(coolant_rule):
    state, events = feed(coolant_rule, coolant({range(0, 40): 112.0, range(40, 100): 104.0}))
    assert summary(events) == [(30, "raised", "warning")]  # 59 s below: not yet
    state, events = feed(coolant_rule, [(100, {"coolant_temp_c": 104.0})], state)
    assert summary(events) == [(100, "cleared", "warning")]
    assert events[0][1].threshold == 105.0 and events[0][1].started_at == at(0)
    assert set(state) == {"last_ts"}


def test_a_frame_back_in_the_deadband_restarts_the_off_delay(coolant_rule):
    rows = coolant({range(0, 40): 112.0, range(40, 90): 104.0, (90,): 106.0, range(91, 150): 104.0})
    _, events = feed(coolant_rule, rows)
    assert summary(events) == [(30, "raised", "warning")]  # 59 s below after the blip: still open


def test_no_flapping_while_oscillating_inside_the_deadband(coolant_rule):
    # Idle: wandering between 105 and 110 never raises.
    wobble = [(s, {"coolant_temp_c": 106.0 if s % 20 < 10 else 109.9}) for s in range(0, 600)]
    _, events = feed(coolant_rule, wobble)
    assert events == []
    # Open: the same wobble (or dips just under 105) never clears, and never raises again.
    state, events = feed(coolant_rule, coolant({range(0, 31): 112.0}))
    wobble = [(s, {"coolant_temp_c": 104.5 if s % 40 < 30 else 108.0}) for s in range(31, 331)]
    _, more = feed(coolant_rule, wobble, state)
    assert summary(events) == [(30, "raised", "warning")]
    assert [e.status for _, e in more] == []  # within 10 min: no escalation yet either


def test_crossing_the_threshold_back_and_forth_raises_once(coolant_rule):
    # A climb wobbling around 110 on its way up: the dips stay in the deadband, so the on-delay
    # keeps running from the first crossing and the alert comes 30 s after it.
    wobble = [(s, {"coolant_temp_c": 110.5 if s % 6 < 3 else 109.8}) for s in range(0, 300)]
    _, events = feed(coolant_rule, wobble)
    assert summary(events) == [(30, "raised", "warning")]
    assert events[0][1].started_at == at(0)


def test_a_dip_below_the_clear_level_restarts_the_on_delay(coolant_rule):
    _, events = feed(coolant_rule, coolant({range(0, 20): 112.0, (20,): 104.0, range(21, 60): 112.0}))
    assert summary(events) == [(51, "raised", "warning")]
    assert events[0][1].started_at == at(21)


def test_critical_at_116_raises_after_its_own_short_delay(coolant_rule):
    _, events = feed(coolant_rule, coolant({range(0, 3): 112.0, range(3, 60): 117.0}))
    assert summary(events) == [(8, "raised", "critical")]
    event = events[0][1]
    assert event.started_at == at(0) and event.threshold == 116.0
    assert "at or above 116" in event.message


def test_exactly_116_is_critical_for_coolant(coolant_rule):
    _, events = feed(coolant_rule, coolant({range(0, 20): 116.0}))
    assert summary(events) == [(5, "raised", "critical")]


def test_a_warning_escalates_once_at_the_critical_level(coolant_rule):
    rows = coolant({range(0, 40): 112.0, range(40, 50): 118.0, range(50, 60): 112.0, range(60, 70): 120.0})
    _, events = feed(coolant_rule, rows)
    assert summary(events) == [(30, "raised", "warning"), (45, "escalated", "critical")]
    assert events[1][1].started_at == at(0)  # same episode, same alert_id
    assert "critical level" in events[1][1].message


def test_a_critical_spike_shorter_than_its_delay_does_not_escalate(coolant_rule):
    rows = coolant({range(0, 40): 112.0, range(40, 44): 118.0, range(44, 100): 112.0})
    _, events = feed(coolant_rule, rows)
    assert summary(events) == [(30, "raised", "warning")]


def test_a_warning_not_cleared_in_10_minutes_escalates_once(coolant_rule):
    state, events = feed(coolant_rule, coolant({range(0, 1300): 112.0}))
    assert summary(events) == [(30, "raised", "warning"), (600, "escalated", "critical")]
    assert "not cleared after 10 min" in events[1][1].message
    _, events = feed(coolant_rule, coolant({range(1300, 1400): 104.0}), state)
    assert summary(events) == [(1360, "cleared", "critical")]


def test_escalation_counts_vehicle_time_from_the_episode_start(coolant_rule):
    # Frames every 100 s: the escalation comes with the first frame at or after start + 10 min.
    rows = [(s, {"coolant_temp_c": 112.0}) for s in range(0, 1000, 100)]
    _, events = feed(coolant_rule, rows)
    assert summary(events) == [(100, "raised", "warning"), (600, "escalated", "critical")]


def test_escalation_can_be_disabled():
    config = dataclasses.replace(CONFIG, escalation=dataclasses.replace(CONFIG.escalation, after_min=None))
    _, events = feed(ThresholdRule.coolant(config), coolant({range(0, 2000): 112.0}))
    assert summary(events) == [(30, "raised", "warning")]


def test_out_of_order_and_repeated_frames_are_ignored(coolant_rule):
    state, _ = feed(coolant_rule, coolant({range(0, 20): 112.0}))
    for late in (at(19), at(5), at(-100)):
        same, events = coolant_rule.step(state, FrameView(late, {"coolant_temp_c": 104.0}))
        assert same is state and events == []
    _, events = feed(coolant_rule, coolant({range(20, 31): 112.0}), state)
    assert summary(events) == [(30, "raised", "warning")]  # the late 104 did not restart the delay


def test_a_frame_without_the_signal_restarts_the_on_delay_but_keeps_an_episode(coolant_rule):
    rows = coolant({range(0, 20): 112.0}) + [(20, {})] + coolant({range(21, 52): 112.0})
    _, events = feed(coolant_rule, rows)
    assert summary(events) == [(51, "raised", "warning")]
    state, _ = feed(coolant_rule, coolant({range(0, 31): 112.0}))
    _, events = feed(coolant_rule, [(s, {"coolant_temp_c": None}) for s in range(31, 200)], state)
    assert events == []


def test_transmission_critical_is_strictly_above_120():
    rule = ThresholdRule.transmission(CONFIG)
    _, events = feed(rule, [(s, {"trans_temp_c": 120.0}) for s in range(0, 60)])
    assert summary(events) == [(30, "raised", "warning")]
    _, events = feed(rule, [(s, {"trans_temp_c": 120.1}) for s in range(0, 60)])
    assert summary(events) == [(5, "raised", "critical")]
    assert events[0][1].rule == "trans_temp" and events[0][1].threshold == 120.0


def test_transmission_clears_below_100():
    rule = ThresholdRule.transmission(CONFIG)
    rows = [(s, {"trans_temp_c": 108.0 if s < 40 else 101.0 if s < 200 else 99.0}) for s in range(0, 300)]
    _, events = feed(rule, rows)
    assert summary(events) == [(30, "raised", "warning"), (260, "cleared", "warning")]


def test_transmission_heat_from_an_overheating_engine_is_attributed_to_it():
    rule = ThresholdRule.transmission(CONFIG)
    hot = [(s, {"trans_temp_c": 110.0}) for s in range(0, 100)]
    state, events = feed(rule, hot, open_rules=frozenset({"coolant_temp"}))
    assert events == [] and state["episode"]["quiet"] is True
    # The coolant episode has cleared, the fluid is still hot: the quiet episode carries on ...
    state, events = feed(rule, [(s, {"trans_temp_c": 110.0}) for s in range(100, 1000)], state)
    assert events == []
    # ... and ends without a word; the next episode of its own is announced.
    state, events = feed(rule, [(s, {"trans_temp_c": 95.0}) for s in range(1000, 1061)], state)
    assert events == [] and "episode" not in state
    _, events = feed(rule, [(s, {"trans_temp_c": 110.0}) for s in range(1061, 1100)], state)
    assert summary(events) == [(1091, "raised", "warning")]


def test_an_episode_open_before_its_cause_is_announced_in_full():
    rule = ThresholdRule.transmission(CONFIG)
    state, events = feed(rule, [(s, {"trans_temp_c": 110.0}) for s in range(0, 40)])
    state, more = feed(
        rule,
        [(s, {"trans_temp_c": 95.0}) for s in range(40, 101)],
        state,
        open_rules=frozenset({"coolant_temp"}),
    )
    assert summary(events + more) == [(30, "raised", "warning"), (100, "cleared", "warning")]


# --- oil_pressure -----------------------------------------------------------------------------


def engine(kpa: float, rpm: float = 800.0, running: bool = True) -> dict[str, Any]:
    return {"engine_running": running, "engine_rpm": rpm if running else 0.0, "oil_pressure_kpa": kpa}


@pytest.fixture
def oil_rule() -> OilPressureRule:
    return OilPressureRule(CONFIG.oil_pressure, CONFIG.escalation.after_min)


def test_low_oil_pressure_at_idle_raises_critical_after_5_s(oil_rule):
    rows = [(s, engine(150.0)) for s in range(0, 10)] + [(s, engine(40.0)) for s in range(10, 30)]
    _, events = feed(oil_rule, rows)
    assert summary(events) == [(15, "raised", "critical")]
    assert (events[0][1].value, events[0][1].threshold) == (40.0, 70.0)
    assert events[0][1].started_at == at(10)


def test_the_minimum_rises_with_rpm(oil_rule):
    # 3000 rpm: minimum 70 + 2 x 45 = 160 kPa.
    _, events = feed(oil_rule, [(s, engine(150.0, rpm=3000.0)) for s in range(0, 20)])
    assert summary(events) == [(5, "raised", "critical")] and events[0][1].threshold == 160.0
    _, events = feed(oil_rule, [(s, engine(150.0, rpm=2500.0)) for s in range(0, 20)])  # minimum 137.5
    assert events == []


def test_oil_pressure_holds_then_clears_above_minimum_plus_margin(oil_rule):
    rows = [(s, engine(40.0)) for s in range(0, 60)]
    rows += [(s, engine(75.0)) for s in range(60, 120)]  # above 70 but below 80: deadband
    rows += [(s, engine(150.0)) for s in range(120, 140)]
    _, events = feed(oil_rule, rows)
    assert summary(events) == [(5, "raised", "critical"), (130, "cleared", "critical")]


def test_a_stopped_engine_neither_raises_nor_clears(oil_rule):
    _, events = feed(oil_rule, [(s, engine(0.0, running=False)) for s in range(0, 100)])
    assert events == []
    state, events = feed(oil_rule, [(s, engine(40.0)) for s in range(0, 10)])
    _, more = feed(oil_rule, [(s, engine(0.0, running=False)) for s in range(10, 500)], state)
    assert summary(events) == [(5, "raised", "critical")] and more == []


def test_an_engine_stop_restarts_a_pending_on_delay(oil_rule):
    rows = [(s, engine(40.0)) for s in range(0, 4)] + [(4, engine(0.0, running=False))]
    rows += [(s, engine(40.0)) for s in range(5, 12)]
    _, events = feed(oil_rule, rows)
    assert summary(events) == [(10, "raised", "critical")]


def test_a_cold_start_is_not_low_pressure(oil_rule):
    # Cold thick oil reads high; the first running frame is judged like any other.
    rows = [(s, engine(0.0, running=False)) for s in range(0, 10)] + [
        (s, engine(320.0)) for s in range(10, 60)
    ]
    _, events = feed(oil_rule, rows)
    assert events == []


def test_oil_sag_of_an_overheating_engine_is_attributed_to_it(oil_rule):
    state, events = feed(
        oil_rule, [(s, engine(65.0)) for s in range(0, 30)], open_rules=frozenset({"coolant_temp"})
    )
    assert events == [] and state["episode"]["quiet"] is True


def test_a_failing_pump_is_announced_even_while_the_engine_overheats(oil_rule):
    # 49.9 kPa is more than 20 kPa under the 70 kPa minimum: no thin-oil sag goes that deep.
    _, events = feed(
        oil_rule, [(s, engine(49.9)) for s in range(0, 30)], open_rules=frozenset({"coolant_temp"})
    )
    assert summary(events) == [(5, "raised", "critical")]


def test_oil_out_of_order_frames_are_ignored(oil_rule):
    state, _ = feed(oil_rule, [(s, engine(40.0)) for s in range(0, 4)])
    same, events = oil_rule.step(state, FrameView(at(2), engine(150.0)))
    assert same is state and events == []


# --- battery_voltage --------------------------------------------------------------------------


def electronics(volts: float, ignition: str = "ON") -> dict[str, Any]:
    return {"ignition": ignition, "battery_voltage_v": volts}


@pytest.fixture
def battery_rule() -> BatteryRule:
    return BatteryRule(CONFIG.battery_voltage, CONFIG.escalation.after_min)


def test_running_below_13_v_raises_after_10_s(battery_rule):
    rows = [(s, electronics(14.2)) for s in range(0, 5)] + [(s, electronics(12.4)) for s in range(5, 30)]
    _, events = feed(battery_rule, rows, engine_running=True)
    assert summary(events) == [(15, "raised", "warning")]
    assert (events[0][1].threshold, events[0][1].started_at) == (13.0, at(5))


def test_running_above_15_v_raises(battery_rule):
    _, events = feed(battery_rule, [(s, electronics(15.4)) for s in range(0, 20)], engine_running=True)
    assert summary(events) == [(10, "raised", "warning")]
    assert events[0][1].threshold == 15.0 and "above 15" in events[0][1].message


def test_a_healthy_battery_at_rest_is_quiet(battery_rule):
    # 12.6 V with the ignition off, or on before the engine starts: resting, not "not charging".
    _, events = feed(
        battery_rule, [(s, electronics(12.6, "OFF")) for s in range(0, 100)], engine_running=False
    )
    assert events == []
    _, events = feed(
        battery_rule, [(s, electronics(12.4, "ON")) for s in range(0, 100)], engine_running=False
    )
    assert events == []


def test_a_flat_battery_at_rest_raises(battery_rule):
    _, events = feed(
        battery_rule, [(s, electronics(11.8, "OFF")) for s in range(0, 20)], engine_running=False
    )
    assert summary(events) == [(10, "raised", "warning")] and events[0][1].threshold == 12.0


def test_a_short_cranking_dip_does_not_raise(battery_rule):
    rows = [(s, electronics(12.6, "OFF")) for s in range(0, 5)]
    rows += [(5, electronics(10.5, "START")), (6, electronics(11.9, "ON"))]
    rows += [(s, electronics(14.3)) for s in range(7, 60)]
    _, events = feed(battery_rule, rows, engine_running=True)
    assert events == []


def test_an_alternator_episode_survives_parking_and_clears_on_the_next_good_run(battery_rule):
    state, events = feed(battery_rule, [(s, electronics(12.3)) for s in range(0, 20)], engine_running=True)
    state, parked = feed(
        battery_rule, [(s, electronics(12.5, "OFF")) for s in range(20, 500)], state, engine_running=False
    )
    state, run = feed(
        battery_rule, [(s, electronics(14.2)) for s in range(500, 540)], state, engine_running=True
    )
    assert summary(events) == [(10, "raised", "warning")]
    assert parked == []
    assert summary(run) == [(530, "cleared", "warning")]


def test_battery_deadband_does_not_clear(battery_rule):
    rows = [(s, electronics(12.5)) for s in range(0, 20)] + [(s, electronics(13.1)) for s in range(20, 200)]
    _, events = feed(battery_rule, rows, engine_running=True)
    assert summary(events) == [(10, "raised", "warning")]


def test_battery_out_of_order_frames_are_ignored(battery_rule):
    state, _ = feed(battery_rule, [(s, electronics(12.5)) for s in range(0, 5)], engine_running=True)
    same, events = battery_rule.step(state, FrameView(at(3), electronics(14.0), engine_running=True))
    assert same is state and events == []


# --- tires: tire_pressure_low (N of M) and tire_puncture (rate) -------------------------------


def chassis(
    fl: float | None = 240.0, fr: float = 240.0, rl: float = 240.0, rr: float = 240.0
) -> dict[str, Any]:
    return dict(zip(TIRES, (fl, fr, rl, rr), strict=True))


@pytest.fixture
def tire_rules() -> TireRules:
    return TireRules(CONFIG.tire_pressure_low, CONFIG.tire_puncture, CONFIG.escalation.after_min)


@pytest.fixture
def low_rules() -> TireRules:
    """The low-pressure rule alone: the step changes below would also be punctures."""
    never = dataclasses.replace(CONFIG.tire_puncture, kpa_per_min=1e9)
    return TireRules(CONFIG.tire_pressure_low, never, CONFIG.escalation.after_min)


def test_low_pressure_needs_3_of_the_last_5_frames(low_rules):
    tire_rules = low_rules
    # Placard learned from the first frame: 240 kPa, so the low level is 180 kPa.
    state, _ = feed(tire_rules, [(s, chassis()) for s in range(0, 5)])
    pattern = [179.0, 200.0, 200.0, 179.0, 200.0, 200.0, 179.0]  # low every 3rd frame: 2 of any 5
    state, events = feed(tire_rules, [(5 + i, chassis(fl=p)) for i, p in enumerate(pattern)], state)
    assert events == []
    state, events = feed(tire_rules, [(12, chassis(fl=180.0))], state)  # 180 <= 180: 3 of the last 5
    assert summary(events) == [(12, "raised", "warning")]
    event = events[0][1]
    assert (event.rule, event.signal, event.threshold) == ("tire_pressure_low", "tire_fl_kpa", 180.0)


def test_low_pressure_holds_and_clears_above_85_percent_held_30_s(low_rules):
    tire_rules = low_rules
    rows = [(s, chassis()) for s in range(0, 5)] + [(s, chassis(rr=170.0)) for s in range(5, 100)]
    rows += [(s, chassis(rr=200.0)) for s in range(100, 200)]  # pumped up a bit: still under 204
    rows += [(s, chassis(rr=238.0)) for s in range(200, 240)]
    _, events = feed(tire_rules, rows)
    assert summary(events) == [(7, "raised", "warning"), (230, "cleared", "warning")]
    assert all(e.signal == "tire_rr_kpa" for _, e in events)


def test_each_tire_is_its_own_episode(low_rules):
    tire_rules = low_rules
    rows = [(s, chassis()) for s in range(0, 5)] + [(s, chassis(fl=170.0, rl=170.0)) for s in range(5, 20)]
    _, events = feed(tire_rules, rows)
    assert sorted(e.signal for _, e in events) == ["tire_fl_kpa", "tire_rl_kpa"]


def test_a_slow_leak_is_low_pressure_not_a_puncture(tire_rules):
    # 4 kPa/min from 240: reaches 180 after 15 minutes.
    rows = [(s, chassis(fl=round(240.0 - 4.0 * s / 60, 1))) for s in range(0, 960)]
    _, events = feed(tire_rules, rows)
    assert [(e.rule, e.status) for _, e in events] == [("tire_pressure_low", "raised")]
    assert 900 <= events[0][0] <= 903


def test_a_puncture_raises_critical_within_its_window_and_quiets_the_low_alert(tire_rules):
    # 1 kPa/s = 60 kPa/min from t=20 until the tire is flat.
    rows = [(s, chassis()) for s in range(0, 20)]
    rows += [(s, chassis(rl=max(40.0, 240.0 - (s - 19)))) for s in range(20, 600)]
    state, events = feed(tire_rules, rows)
    assert summary(events) == [(23, "raised", "critical")]
    event = events[0][1]
    assert (event.rule, event.signal, event.threshold) == ("tire_puncture", "tire_rl_kpa", 20.0)
    assert event.value > 20.0 and event.started_at == at(23)
    assert state["episodes"]["tire_rl_kpa"]["low"]["episode"]["quiet"] is True
    # Flat for 10 more minutes: the puncture stays open (and escalates no further: it is critical).
    state, events = feed(tire_rules, [(s, chassis(rl=40.0)) for s in range(600, 1200)], state)
    assert events == []
    # Repaired: both episodes end, only the puncture says so.
    _, events = feed(tire_rules, [(s, chassis()) for s in range(1200, 1240)], state)
    assert [(e.rule, e.status) for _, e in events] == [("tire_puncture", "cleared")]


def test_a_puncture_rate_needs_a_full_window(tire_rules):
    # A 3 kPa step between two frames is 180 kPa/min over one second, but not over ten.
    rows = [(s, chassis()) for s in range(0, 20)] + [(s, chassis(fr=237.0)) for s in range(20, 60)]
    _, events = feed(tire_rules, rows)
    assert events == []


def test_rising_pressure_is_no_puncture(tire_rules):
    rows = [(s, chassis(fl=150.0 + 2 * s)) for s in range(0, 40)]
    _, events = feed(tire_rules, rows)
    assert not [e for _, e in events if e.rule == "tire_puncture"]


def test_tire_frames_out_of_order_are_ignored_not_a_negative_rate(tire_rules):
    state, _ = feed(tire_rules, [(s, chassis()) for s in range(0, 30)])
    for late in (29, 10):
        same, events = tire_rules.step(state, FrameView(at(late), chassis(fl=100.0)))
        assert same is state and events == []
    _, events = feed(tire_rules, [(s, chassis()) for s in range(30, 60)], state)
    assert events == []


def test_the_baseline_is_the_lowest_highest_tire_and_ignores_dropouts(tire_rules):
    state, _ = feed(tire_rules, [(0, chassis(265.0, 266.0, 264.0, 265.0))])  # warm start
    assert state["baseline"] == 266.0
    state, _ = feed(tire_rules, [(1, chassis(240.0, 241.0, 239.0, 240.0))], state)  # cold morning
    assert state["baseline"] == 241.0
    state, _ = feed(tire_rules, [(2, chassis(0.0, 0.0, 0.0, 0.0))], state)  # TPMS dropout
    assert state["baseline"] == 241.0
    state, _ = feed(tire_rules, [(3, chassis(260.0, 260.0, 100.0, 260.0))], state)  # one tire low
    assert state["baseline"] == 241.0


def test_a_configured_placard_replaces_learning():
    config = dataclasses.replace(CONFIG.tire_pressure_low, placard_kpa=300.0)
    rules = TireRules(config, CONFIG.tire_puncture)
    _, events = feed(rules, [(s, chassis()) for s in range(0, 5)])  # 240 <= 225? no; but <= 75% of 300
    assert events == []
    _, events = feed(rules, [(s, chassis(fl=220.0)) for s in range(0, 5)])
    assert summary(events) == [(2, "raised", "warning")]


def test_a_missing_tire_reading_changes_nothing_for_that_tire(tire_rules):
    rows = [(s, chassis()) for s in range(0, 5)] + [(s, chassis(fl=None)) for s in range(5, 50)]
    state, events = feed(tire_rules, rows)
    assert events == [] and state["bits"][0] == 0


def test_a_low_tire_warning_escalates_after_10_minutes(low_rules):
    tire_rules = low_rules
    rows = [(s, chassis()) for s in range(0, 3)] + [(s, chassis(fr=170.0)) for s in range(3, 700)]
    _, events = feed(tire_rules, rows)
    assert summary(events) == [(5, "raised", "warning"), (605, "escalated", "critical")]


# --- brake_pad_wear ---------------------------------------------------------------------------


def pads(front: float, rear: float = 30.0) -> dict[str, Any]:
    return {"brake_pad_wear_front_pct": front, "brake_pad_wear_rear_pct": rear}


@pytest.fixture
def brake_rule() -> BrakePadRule:
    return BrakePadRule(CONFIG.brake_pad_wear, CONFIG.escalation.after_min)


def test_worn_pads_raise_after_10_s_and_new_pads_clear(brake_rule):
    rows = [(s, pads(79.99)) for s in range(0, 10)] + [(s, pads(80.0)) for s in range(10, 100)]
    rows += [(s, pads(2.0)) for s in range(100, 120)]
    _, events = feed(brake_rule, rows)
    assert summary(events) == [(20, "raised", "warning"), (110, "cleared", "warning")]
    assert events[0][1].threshold == 80.0


def test_worn_rear_pads_count_too(brake_rule):
    _, events = feed(brake_rule, [(s, pads(40.0, rear=85.0)) for s in range(0, 20)])
    assert summary(events) == [(10, "raised", "warning")] and events[0][1].value == 85.0


def test_pads_hovering_at_the_limit_raise_once_and_do_not_flap(brake_rule):
    # 79.9 is in the deadband (75..80): it does not restart the on-delay, and cannot clear.
    rows = [(s, pads(79.9 if s % 4 else 80.1)) for s in range(0, 300)]
    _, events = feed(brake_rule, rows)
    assert summary(events) == [(12, "raised", "warning")]
    assert events[0][1].started_at == at(0)


def test_pads_below_the_clear_level_never_raise(brake_rule):
    rows = [(s, pads(74.9 if s % 4 else 80.1)) for s in range(0, 300)]  # back under 75 every 4 s
    _, events = feed(brake_rule, rows)
    assert events == []


def test_brake_out_of_order_frames_are_ignored(brake_rule):
    state, _ = feed(brake_rule, [(s, pads(81.0)) for s in range(0, 5)])
    same, events = brake_rule.step(state, FrameView(at(1), pads(2.0)))
    assert same is state and events == []


# --- dtc_new ----------------------------------------------------------------------------------


@pytest.fixture
def dtc_rule() -> DtcRule:
    return DtcRule(CONFIG.dtc_new, CONFIG.escalation.after_min)


def codes(*dtcs: str) -> dict[str, Any]:
    return {"dtc_list": list(dtcs)}


def test_a_new_critical_code_raises_at_once_and_clears_when_it_goes(dtc_rule):
    rows = [(0, codes()), (1, codes("P0217"))] + [(s, codes("P0217")) for s in range(2, 50)] + [(50, codes())]
    _, events = feed(dtc_rule, rows)
    assert summary(events) == [(1, "raised", "critical"), (50, "cleared", "critical")]
    event = events[0][1]
    assert (event.signal, event.value, event.threshold) == ("P0217", "P0217", None)
    assert "trouble code P0217 set" in event.message


def test_other_codes_are_warnings_that_escalate_after_10_minutes(dtc_rule):
    rows = [(0, codes())] + [(s, codes("P0420")) for s in range(1, 700)]
    _, events = feed(dtc_rule, rows)
    assert summary(events) == [(1, "raised", "warning"), (601, "escalated", "critical")]


def test_each_code_is_its_own_episode(dtc_rule):
    rows = [(0, codes("P0420")), (1, codes("P0420", "P0300")), (2, codes("P0300")), (3, codes("P0300"))]
    _, events = feed(dtc_rule, rows)
    assert [(s, e.status, e.signal) for s, e in events] == [
        (0, "raised", "P0420"),
        (1, "raised", "P0300"),
        (2, "cleared", "P0420"),
    ]


def test_a_code_that_comes_back_is_a_new_episode(dtc_rule):
    rows = [(0, codes("P0171")), (1, codes()), (2, codes("P0171"))]
    _, events = feed(dtc_rule, rows)
    assert [(e.status, e.started_at) for _, e in events] == [
        ("raised", at(0)),
        ("cleared", at(0)),
        ("raised", at(2)),
    ]


def test_dtc_state_keeps_only_open_codes(dtc_rule):
    state, _ = feed(dtc_rule, [(0, codes("P0420", "P0300")), (1, codes("P0300"))])
    assert set(state["codes"]) == {"P0300"}
    state, _ = feed(dtc_rule, [(2, codes())], state)
    assert state == {"last_ts": at(2)}


def test_dtc_out_of_order_frames_and_bad_lists_are_ignored(dtc_rule):
    state, _ = feed(dtc_rule, [(0, codes()), (1, codes("P0217"))])
    same, events = dtc_rule.step(state, FrameView(at(0), codes()))
    assert same is state and events == []
    state, events = feed(dtc_rule, [(2, {"dtc_list": "P0217"}), (3, {})], state)
    assert events == [] and set(state["codes"]) == {"P0217"}


# --- stale ------------------------------------------------------------------------------------


@pytest.fixture
def stale_rule() -> StaleRule:
    return StaleRule(CONFIG.stale)


def seen(rule: StaleRule, seconds: Iterable[float], state=None, ignition: bool | None = True):
    """Frames at these vehicle seconds, each arriving (wall clock) at the same instant."""
    events = []
    for s in seconds:
        state, ev = rule.observe(state, at(s), at(s), ignition)
        events += ev
    return state, events


def test_stale_raises_after_3_cadences_of_silence_and_clears_on_the_next_frame(stale_rule):
    state, _ = seen(stale_rule, range(0, 10))  # last frame at 9 s
    same, events = stale_rule.check(state, at(12))  # 3 s of silence: not more than 3 cadences
    assert same is state and events == []
    state, events = stale_rule.check(state, at(12.001))
    assert summary([(0, e) for e in events]) == [(0, "raised", "warning")]
    event = events[0]
    assert (event.rule, event.started_at, event.ts) == ("stale", at(10), at(10))  # the first missed frame
    assert event.threshold == 3.0 and event.value == pytest.approx(3.001)
    # The timer keeps firing: nothing more, and the state object is handed back unchanged.
    for now in (13, 60, 3600):
        same, events = stale_rule.check(state, at(now))
        assert same is state and events == []
    state, events = seen(stale_rule, [130], state)
    assert [(e.status, e.started_at, e.value) for e in events] == [("cleared", at(10), 121.0)]
    assert "episode" not in state


def test_stale_is_deterministic_across_timer_restarts(stale_rule):
    state, _ = seen(stale_rule, range(0, 10))
    _, first = stale_rule.check(state, at(15))
    _, again = stale_rule.check(copy.deepcopy(state), at(40))  # the state before the raise, later
    assert first[0].started_at == again[0].started_at


def test_a_car_with_its_ignition_off_is_never_stale(stale_rule):
    state, _ = seen(stale_rule, range(0, 10), ignition=False)
    same, events = stale_rule.check(state, at(3600))
    assert same is state and events == []


def test_the_ignition_comes_from_any_frame_of_the_tick(stale_rule):
    state, _ = seen(stale_rule, range(0, 10), ignition=None)  # no electronics frame yet
    assert stale_rule.check(state, at(100))[1] == []
    state, _ = stale_rule.observe(state, at(9), at(9), True)  # the electronics frame of the last tick
    assert len(stale_rule.check(state, at(100))[1]) == 1


def test_the_cadence_is_learned_from_the_cars_intervals(stale_rule):
    state, _ = seen(stale_rule, range(0, 60, 5))  # a car sending every 5 s; last frame at 55 s
    assert stale_rule.check(state, at(65))[1] == []  # 10 s of silence is two intervals
    assert len(stale_rule.check(state, at(70.001))[1]) == 1
    assert stale_rule.check(state, at(70.001))[1][0].started_at == at(60)


def test_one_long_gap_does_not_change_the_cadence(stale_rule):
    state, _ = seen(stale_rule, [*range(0, 10), *range(200, 203)])
    assert stale_rule.cadence_ms(state) == 1000.0
    assert len(stale_rule.check(state, at(206))[1]) == 1


def test_a_late_frame_neither_clears_nor_refreshes(stale_rule):
    state, _ = seen(stale_rule, range(0, 10))
    state, _ = stale_rule.check(state, at(20))
    # A frame from before the silence arrives late (another subsystem's topic lagging).
    after, events = stale_rule.observe(state, at(9), at(25), True)
    assert after is state and events == []
    assert "episode" in after


def test_the_silence_is_measured_on_the_arrival_clock(stale_rule):
    # Frames arrive 500 ms after their vehicle time; the silence counts from the arrival.
    state = None
    for s in range(0, 10):
        state, _ = stale_rule.observe(state, at(s), at(s + 0.5), True)
    assert stale_rule.check(state, at(12.5))[1] == []
    assert len(stale_rule.check(state, at(12.501))[1]) == 1


def test_default_cadence_before_any_interval(stale_rule):
    state, _ = seen(stale_rule, [0])
    assert stale_rule.cadence_ms(state) == StaleConfig().cadence_ms
    assert stale_rule.check(None, at(100)) == (None, [])


# --- every rule: pure, small, JSON-able state ------------------------------------------------


def all_rules():
    after = CONFIG.escalation.after_min
    return [
        (ThresholdRule.coolant(CONFIG), lambda s: {"coolant_temp_c": 100.0 + (s % 40)}),
        (ThresholdRule.transmission(CONFIG), lambda s: {"trans_temp_c": 95.0 + (s % 40)}),
        (OilPressureRule(OilPressureConfig(), after), lambda s: engine(40.0 + (s % 120), rpm=800.0 + 10 * s)),
        (BatteryRule(BatteryConfig(), after), lambda s: electronics(11.5 + (s % 50) / 10)),
        (TireRules(TirePressureConfig(), PunctureConfig(), after), lambda s: chassis(fl=240.0 - (s % 90))),
        (BrakePadRule(BrakePadConfig(), after), lambda s: pads(70.0 + (s % 40))),
        (DtcRule(DtcConfig(), after), lambda s: codes(*(["P0300"] if s % 30 < 10 else []))),
    ]


@pytest.mark.parametrize(("rule", "signals"), all_rules(), ids=lambda x: type(x).__name__)
def test_rules_are_pure_and_their_state_is_small_json(rule, signals):
    state = None
    statuses = set()
    for s in range(0, 1500):
        before = copy.deepcopy(state)
        new, events = rule.step(state, FrameView(at(s), signals(s), engine_running=True))
        assert state == before  # the input state is never mutated
        statuses |= {e.status for e in events}
        assert json.loads(json.dumps(new)) == new  # plain JSON types only
        assert len(json.dumps(new)) < 800
        state = new
    assert "raised" in statuses


def test_number_accepts_finite_numbers_only():
    assert number(1) == 1.0 and number(2.5) == 2.5
    assert number(True) is None and number(None) is None and number("3") is None
    assert number(float("nan")) is None and number(float("inf")) is None
