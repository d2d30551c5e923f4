"""Model-level acceptance: a seeded fleet with faults, every frame through the engine, vs its labels.

The hot path's acceptance on the real stack is "alerts match the labels file: recall 100 %,
precision >= 99 %, one episode per fault, detection delay p99 <= the rule's on-delay + 2 s".
Here the same comparison runs in memory: the simulator's frames go, in order, through
`RuleEngine.on_frame` with the wall clock equal to the vehicle clock, and `on_timer` runs after
every tick (the staleness timer).

The fleet is the every-fault scenario (one of each fault kind on cars 0..8 at 600 s) plus faults
drawn at 4 per car-hour, seed 7. Two simulator behaviours once made the acceptance unreachable
for some seeds whatever the rules did, both fixed in the model since: fault-free SUVs driven
hard on warm days overheated (radiators were undersized), and a car could start its next fault
the tick after a repair, before its signals were back to normal (now a 15-minute cool-down).
`test_a_hard_driven_suv_on_a_warm_day_raises_nothing` keeps the first one fixed.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import pytest

from services.common.settings import PROJECT_ROOT
from services.hot.alerts import Alert
from services.hot.config import RulesConfig
from services.hot.engine import RuleEngine
from simulators.drivers import DRIVER_STYLES
from simulators.faults import FAULT_KINDS, load_scenario
from simulators.fleet import Fleet, FleetConfig
from simulators.vehicle import Car, CarProfile

SCENARIO = PROJECT_ROOT / "simulators" / "scenarios" / "every-fault.yaml"
SEED, CARS, FAULT_RATE, DURATION_S = 7, 16, 4.0, 2700
TICK_MS = 1000
CONFIG = RulesConfig()


def budget_ms(rule: str, config: RulesConfig = CONFIG) -> int:
    """The rule's on-delay + 2 s: the detection delay the acceptance allows (vehicle ms)."""
    on_delay_s = {
        "coolant_temp": config.coolant_temp.on_delay_s,
        "trans_temp": config.trans_temp.on_delay_s,
        "oil_pressure": config.oil_pressure.on_delay_s,
        "battery_voltage": config.battery_voltage.on_delay_s,
        # N of M: the N-th low frame, N - 1 ticks after the first.
        "tire_pressure_low": (config.tire_pressure_low.n - 1) * TICK_MS / 1000,
        # The rate needs a window of history; a puncture shows well within it.
        "tire_puncture": config.tire_puncture.window_s,
        "brake_pad_wear": config.brake_pad_wear.on_delay_s,
        "dtc_new": 0.0,
        "stale": config.stale.factor * TICK_MS / 1000,
    }[rule]
    return round(on_delay_s * 1000) + 2000


def drive(engine: RuleEngine, steps, vins: list[str]) -> list[Alert]:
    """Every frame of every tick through the engine, then the timer; wall clock = vehicle clock."""
    states: dict[str, Any] = {}
    alerts: list[Alert] = []
    for now, frames in steps:
        for vin, subsystem, frame in frames:
            states[vin], out = engine.on_frame(vin, subsystem, frame, states.get(vin), now)
            alerts += out
        for vin in vins:
            new, out = engine.on_timer(vin, states.get(vin), now)
            if out:
                states[vin] = new
                alerts += out
    return alerts


@pytest.fixture(scope="module")
def run() -> tuple[Fleet, list[Alert]]:
    fleet = Fleet(FleetConfig(cars=CARS, seed=SEED, fault_rate=FAULT_RATE, scenario=load_scenario(SCENARIO)))
    alerts = drive(RuleEngine(CONFIG), fleet.run(DURATION_S), [car.profile.vin for car in fleet.cars])
    fleet.finish()
    return fleet, alerts


def gradable(fleet: Fleet) -> list[dict[str, Any]]:
    """Labels whose signature showed early enough for the run to see the alert."""
    return [
        label
        for label in fleet.labels()
        if label["onset_ts"] is not None and label["onset_ts"] + budget_ms(label["rule"]) <= fleet.ts
    ]


def matches(alert: Alert, label: dict[str, Any]) -> bool:
    """Same car, same rule, same tire / trouble code."""
    if alert.vin != label["vin"] or alert.rule != label["rule"]:
        return False
    return not alert.signal or alert.signal == label["detail"]


def detection(alerts: list[Alert], label: dict[str, Any]) -> Alert | None:
    """The `raised` of `label`: its rule, its car, detected within [onset, onset + budget]."""
    onset, budget = label["onset_ts"], budget_ms(label["rule"])
    found = [
        a
        for a in alerts
        if a.status == "raised" and matches(a, label) and onset <= a.detected_at <= onset + budget
    ]
    return found[0] if found else None


def test_every_fault_kind_is_exercised(run):
    fleet, _ = run
    labels = gradable(fleet)
    assert {label["fault"] for label in labels} == set(FAULT_KINDS)
    assert len(labels) >= 20


def test_recall_every_label_raises_its_rule_within_on_delay_plus_2_s(run):
    fleet, alerts = run
    missed = [label for label in gradable(fleet) if detection(alerts, label) is None]
    assert missed == [], (
        "a label whose rule episode was still open from the car's last fault? (docstring gap 2)"
    )


def test_precision_raised_alerts_are_explained_by_labels(run):
    fleet, alerts = run
    labels = fleet.labels()
    raised = [a for a in alerts if a.status == "raised"]

    def explained(alert: Alert) -> bool:
        return any(
            matches(alert, label)
            and label["start_ts"]
            <= alert.started_at
            <= max(label["end_ts"], (label["onset_ts"] or 0) + budget_ms(label["rule"]))
            for label in labels
        )

    unexplained = [a for a in raised if not explained(a)]
    assert raised
    assert 1 - len(unexplained) / len(raised) >= 0.99, [a.to_dict() for a in unexplained]


def test_one_episode_per_label(run):
    fleet, alerts = run
    for label in gradable(fleet):
        episodes = {
            a.alert_id
            for a in alerts
            if a.status == "raised"
            and matches(a, label)
            and label["start_ts"] <= a.started_at <= label["end_ts"]
        }
        assert len(episodes) == 1, (label, episodes)
    raised = [a.alert_id for a in alerts if a.status == "raised"]
    assert len(raised) == len(set(raised))


def test_detection_delay_p99_within_each_rules_on_delay_plus_2_s(run):
    fleet, alerts = run
    delays: dict[str, list[int]] = defaultdict(list)
    for label in gradable(fleet):
        alert = detection(alerts, label)
        assert alert is not None, label
        delays[label["rule"]].append(alert.detected_at - label["onset_ts"])
    for rule, found in delays.items():
        p99 = statistics.quantiles(found, n=100, method="inclusive")[98] if len(found) > 1 else found[0]
        assert 0 <= min(found) and p99 <= budget_ms(rule), (rule, sorted(found))


def test_every_episode_of_a_repaired_fault_clears(run):
    fleet, alerts = run
    by_id: dict[str, set[str]] = defaultdict(set)
    for a in alerts:
        by_id[a.alert_id].add(a.status)
    for label in gradable(fleet):
        if label["end_ts"] + 5 * 60_000 > fleet.ts:
            continue  # repaired too close to the end of the run to have cooled down, pumped up...
        alert = detection(alerts, label)
        assert alert is not None and "cleared" in by_id[alert.alert_id], label


# --- single fault-free cars: no alert at all ---------------------------------------------------

T0 = 1_795_000_000_000
LONG_DISTANCE = {"urban": 0.1, "suburban": 0.2, "highway": 0.7}
CITY = {"urban": 0.8, "suburban": 0.15, "highway": 0.05}


def healthy_alerts(
    vehicle_class: str, driver: str, ambient_c: float, routes, seconds: int = 1800
) -> list[Alert]:
    profile = CarProfile(
        "1FLEET00000000001", vehicle_class, DRIVER_STYLES[driver], routes, 30.0, (48.0, 11.0), ambient_c
    )
    car = Car(profile, seed=1, start_ts=T0)

    def steps():
        for i in range(1, seconds + 1):
            car.step(1.0, T0 + i * 1000)
            yield T0 + i * 1000, car.frames()

    return drive(RuleEngine(CONFIG), steps(), [profile.vin])


@pytest.mark.parametrize(
    ("vehicle_class", "driver", "ambient_c", "routes"),
    [
        ("compact", "eco", -5.0, CITY),  # cold starts, idling, battery at rest, engine off at stops
        ("midsize", "normal", 30.0, LONG_DISTANCE),
        ("suv", "normal", 30.0, LONG_DISTANCE),
        ("compact", "aggressive", 30.0, LONG_DISTANCE),
        ("midsize", "aggressive", 15.0, CITY),
    ],
)
def test_a_fault_free_car_raises_nothing(vehicle_class, driver, ambient_c, routes):
    assert healthy_alerts(vehicle_class, driver, ambient_c, routes) == []


def test_a_hard_driven_suv_on_a_warm_day_raises_nothing():
    assert healthy_alerts("suv", "aggressive", 25.0, LONG_DISTANCE, seconds=3600) == []
