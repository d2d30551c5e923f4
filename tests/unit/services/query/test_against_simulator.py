"""The queries on a seeded simulated fleet agree with what the model itself knows.

The pure simulator runs in-process (no MQTT); its engine, chassis and transmission frames go to a
lake in the contract layout. The truth comes from the cars' own state while they run (counters,
speed, phase, the road segment they are on), never from the frames.
"""

from __future__ import annotations

from collections import defaultdict

import pytest

from services.query.filters import Filters
from services.query.lake import Lake
from services.query.queries import run_query
from services.query.settings import QuerySettings
from simulators.fleet import Fleet, FleetConfig
from tests.unit.services.query.lakewriter import write_frames

CARS, SECONDS, SEED = 12, 3600, 11
MODE_OF_STYLE = {"eco": "ECONOMY", "normal": "NORMAL", "aggressive": "SPORT"}


def ranks(values):
    """Ranks 1..n, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    out = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            out[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return out


def spearman(xs, ys):
    rx, ry = ranks(xs), ranks(ys)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    cov = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    vx = sum((a - mx) ** 2 for a in rx)
    vy = sum((b - my) ** 2 for b in ry)
    return cov / (vx * vy) ** 0.5


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    fleet = Fleet(FleetConfig(cars=CARS, seed=SEED))
    frames = {"engine": [], "chassis": [], "transmission": []}
    idle_l = defaultdict(float)  # fuel burned while running at speed 0
    road_km = defaultdict(float)  # distance per kind of road segment
    stretches = defaultdict(list)  # km moved per engine-on stretch (a trip, closing tick included)
    for _ in range(SECONDS):
        before = {
            car.profile.vin: (
                car.fuel_used_l,
                car.odometer_km,
                car.route.segments[car.seg_index].kind,
                car.running,
            )
            for car in fleet.cars
        }
        for _vin, subsystem, frame in fleet.step():
            if subsystem in frames:
                frames[subsystem].append(frame)
        for car in fleet.cars:
            vin = car.profile.vin
            fuel0, odo0, kind, was_running = before[vin]
            if car.running and car.speed == 0:
                idle_l[vin] += car.fuel_used_l - fuel0
            road_km[kind] += car.odometer_km - odo0
            if car.running and not was_running:
                stretches[vin].append(0.0)
            if (car.running or was_running) and stretches[vin]:
                stretches[vin][-1] += car.odometer_km - odo0
    lake_dir = tmp_path_factory.mktemp("simulated") / "lake"
    for subsystem, rows in frames.items():
        write_frames(lake_dir, subsystem, rows)
    lake = Lake(lake_dir)
    yield fleet, lake, {"idle_l": idle_l, "road_km": road_km, "stretches": stretches}
    lake.close()


def test_fuel_ranking_agrees_with_the_models_true_consumption(simulated):
    fleet, lake, _ = simulated
    board = {r["vin"]: r for r in run_query(lake, "leaderboard", Filters(), QuerySettings()).records()}
    truth = {}
    for car in fleet.cars:
        km = car.odometer_km - car.start_odometer_km
        if km >= 1.0:
            truth[car.profile.vin] = (car.fuel_used_l - car.start_fuel_used_l) / km * 100
    assert set(board) == set(truth)
    assert len(truth) >= 10
    vins = sorted(truth)
    rho = spearman([board[v]["l_per_100km"] for v in vins], [truth[v] for v in vins])
    assert rho >= 0.9
    for vin in vins:  # and the values themselves, to the counters' 4 decimals
        assert board[vin]["l_per_100km"] == pytest.approx(truth[vin], abs=0.01)


def test_trips_are_the_models_engine_on_stretches(simulated):
    _, lake, truth = simulated
    found = defaultdict(list)
    for trip in run_query(lake, "trips", Filters(), QuerySettings()).records():
        found[trip["vin"]].append(trip["distance_km"])
    for vin, stretches in truth["stretches"].items():
        moved = [km for km in stretches if km > 0]
        assert found[vin] == pytest.approx(moved, abs=0.002), vin


def test_idle_waste_agrees_with_the_model(simulated):
    _, lake, truth = simulated
    got = {r["vin"]: r["idle_fuel_l"] for r in run_query(lake, "idle", Filters(), QuerySettings()).records()}
    for vin, litres in truth["idle_l"].items():
        assert got[vin] == pytest.approx(litres, abs=0.002, rel=0.01), vin


def test_road_types_inferred_from_speed_match_the_segments_driven(simulated):
    _, lake, truth = simulated
    total = sum(truth["road_km"].values())
    got = {
        r["road"]: r["distance_share_pct"]
        for r in run_query(lake, "by-road", Filters(), QuerySettings()).records()
    }
    for kind, km in truth["road_km"].items():
        assert got[kind] == pytest.approx(100 * km / total, abs=3.0), kind


def test_drive_mode_is_the_driver_style(simulated):
    fleet, lake, _ = simulated
    got = {r["mode"]: r["cars"] for r in run_query(lake, "by-mode", Filters(), QuerySettings()).records()}
    styles = defaultdict(int)
    for car in fleet.cars:
        if car.odometer_km - car.start_odometer_km >= 1.0:
            styles[MODE_OF_STYLE[car.profile.driver.name]] += 1
    assert got == dict(styles)
