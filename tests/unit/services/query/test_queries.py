"""Every canned query on the hand-made lake (conftest.py) equals the hand computation beside it."""

from __future__ import annotations

import datetime as dt

import pytest

from services.query.filters import Filters
from services.query.lake import Lake, QueryError
from services.query.queries import QUERIES, run_query
from services.query.settings import QuerySettings
from tests.unit.services.query.conftest import DAY2, T0, T_OLD, at
from tests.unit.services.query.lakewriter import write_frames

UTC = dt.UTC
DEFAULTS = QuerySettings()


def rows(lake, name, filters=None, settings=DEFAULTS, now=None):
    return run_query(lake, name, filters or Filters(), settings, now).records()


def pick(records, *columns):
    return [tuple(r[c] for c in columns) for r in records]


# --- leaderboard ---------------------------------------------------------------------------------


def test_leaderboard_ranks_by_litres_per_100km_with_ties_and_percentiles(lake):
    got = rows(lake, "leaderboard")
    # A 0.12 L / 1.1 km and D 0.24 / 2.2 tie at 10.909; E 0.24 / 2.0 = 12.0; B 0.24 / 1.85 = 12.973.
    # C drove 0.5 km < FLEET_QUERY_MIN_KM=1: left out. percentile = 100 (1 - (rank-1)/(n-1)), n = 4.
    assert pick(got, "rank", "vin", "percentile") == [
        (1, "A", 100.0),
        (1, "D", 100.0),
        (3, "E", 33.3),
        (4, "B", 0.0),
    ]
    by_vin = {r["vin"]: r for r in got}
    assert by_vin["A"]["distance_km"] == pytest.approx(1.1)
    assert by_vin["A"]["fuel_l"] == pytest.approx(0.12)
    assert by_vin["A"]["l_per_100km"] == pytest.approx(10.909)
    assert by_vin["A"]["km_per_l"] == pytest.approx(9.167)
    assert by_vin["D"]["l_per_100km"] == pytest.approx(10.909)
    assert by_vin["E"]["l_per_100km"] == pytest.approx(12.0)
    assert by_vin["E"]["km_per_l"] == pytest.approx(8.333)
    assert by_vin["B"]["distance_km"] == pytest.approx(1.85)
    assert by_vin["B"]["fuel_l"] == pytest.approx(0.24)
    assert by_vin["B"]["l_per_100km"] == pytest.approx(12.973)
    assert by_vin["B"]["km_per_l"] == pytest.approx(7.708)


def test_leaderboard_min_km_lets_the_short_car_in(lake):
    got = rows(lake, "leaderboard", settings=QuerySettings(min_km=0))
    # C: 0.05 L / 0.5 km = 10.0, now first; n = 5.
    assert pick(got, "rank", "vin", "l_per_100km", "percentile") == [
        (1, "C", 10.0, 100.0),
        (2, "A", 10.909, 75.0),
        (2, "D", 10.909, 75.0),
        (4, "E", 12.0, 25.0),
        (5, "B", 12.973, 0.0),
    ]


def test_leaderboard_vin_filter(lake):
    got = rows(lake, "leaderboard", Filters(vins=("A", "B")))
    assert pick(got, "rank", "vin", "percentile") == [(1, "A", 100.0), (2, "B", 0.0)]


def test_leaderboard_since_a_day_reads_only_that_day(lake):
    got = rows(lake, "leaderboard", Filters.parse(since="2026-11-18"))
    assert pick(got, "rank", "vin", "distance_km", "fuel_l", "percentile") == [(1, "E", 2.0, 0.24, 100.0)]


def test_leaderboard_until_is_exclusive(lake):
    # Rows before 10:00:00 only: A t <= 50 s (1000.0 -> 1000.4 km, 500.00 -> 500.06 L: 15.0),
    # B t <= 50 s (2000.0 -> 2000.3, 800.00 -> 800.06: 20.0), C 10.0, D 10.909; E is the next day.
    got = rows(lake, "leaderboard", Filters.parse(until="2026-11-17T10:00:00Z"), QuerySettings(min_km=0))
    assert pick(got, "rank", "vin", "l_per_100km", "percentile") == [
        (1, "C", 10.0, 100.0),
        (2, "D", 10.909, 66.7),
        (3, "A", 15.0, 33.3),
        (4, "B", 20.0, 0.0),
    ]


def test_leaderboard_since_and_until_together(lake):
    # A from 09:59:30 to before 10:00:30: t = 30..80 s, 1000.3 -> 1000.55 km, 500.04 -> 500.07 L.
    f = Filters.parse(since="2026-11-17T09:59:30", until="2026-11-17T10:00:30", vins=["A"])
    got = rows(lake, "leaderboard", f, QuerySettings(min_km=0))
    assert pick(got, "vin", "distance_km", "fuel_l", "l_per_100km") == [("A", 0.25, 0.03, 12.0)]


# --- trips ---------------------------------------------------------------------------------------

TRIP_COLUMNS = (
    "vin",
    "trip",
    "start",
    "end",
    "minutes",
    "distance_km",
    "fuel_l",
    "l_per_100km",
    "km_per_l",
    "idle_fuel_l",
)


def test_trips_cut_at_ignition_off_long_stops_and_gaps(lake):
    got = rows(lake, "trips", settings=QuerySettings(stop_s=60, gap_s=30))
    assert pick(got, *TRIP_COLUMNS) == [
        # A trip 1: rows 10..60 s, plus the interval ending at the parked row (70 s).
        # km 0 + .1 + .2 + .1 + 0 + .1 + .05; fuel .01 x 6 + .02 - .01 = .07; idle at 10, 40, 50 s.
        ("A", 1, at("A", 10), at("A", 70), 1.0, 0.55, 0.07, 12.727, 7.857, 0.03),
        # A trip 2: 90..110 s + the parking interval: .25 + .25 + .05 km, .01 + .02 + .02 L.
        ("A", 2, at("A", 90), at("A", 120), 0.5, 0.55, 0.05, 9.091, 11.0, 0.01),
        # B trip 1: 0 s (no previous row: unknown), 10 s, and the interval into the long stop (20 s).
        ("B", 1, at("B", 0), at("B", 20), 0.33, 0.3, 0.03, 10.0, 10.0, 0.01),
        # B stood 20..80 s (60 s >= FLEET_QUERY_STOP_S): no trip. Trip 2: 90, 100 s; then a gap.
        ("B", 2, at("B", 90), at("B", 100), 0.17, 0.3, 0.03, 10.0, 10.0, 0.0),
        # B trip 3 after the 100 s gap (> FLEET_QUERY_GAP_S, unknown): 210 s and the parking row.
        ("B", 3, at("B", 200), at("B", 220), 0.33, 0.25, 0.02, 8.0, 12.5, 0.0),
        ("C", 1, at("C", 0), at("C", 10), 0.17, 0.5, 0.05, 10.0, 10.0, 0.0),
        ("D", 1, at("D", 0), at("D", 10), 0.17, 2.2, 0.24, 10.909, 9.167, 0.0),
        ("E", 1, DAY2, at("E", 10), 0.17, 2.0, 0.24, 12.0, 8.333, 0.0),
    ]


def test_trips_with_default_stop_and_gap_keep_a_one_minute_stop_inside_the_trip(lake):
    got = rows(lake, "trips", Filters(vins=("B",)))  # stop 300 s, gap 60 s
    assert pick(got, *TRIP_COLUMNS) == [
        # 0..100 s as one trip: .2 + .1 + 0 x 6 + .1 + .2 km; .02 + .01 x 8 + .02 L; idle 20..80 s.
        ("B", 1, at("B", 0), at("B", 100), 1.67, 0.6, 0.12, 20.0, 5.0, 0.07),
        ("B", 2, at("B", 200), at("B", 220), 0.33, 0.25, 0.02, 8.0, 12.5, 0.0),
    ]


# --- idle ----------------------------------------------------------------------------------------


def test_idle_fuel_is_fuel_at_speed_zero_with_the_engine_running(lake):
    got = rows(lake, "idle", settings=QuerySettings(gap_s=30))
    assert pick(got, "vin", "idle_h", "idle_fuel_l", "fuel_l", "idle_share_pct", "idle_lph") == [
        # B: 20..80 s standing, 7 intervals of 10 s and 0.01 L; known fuel .14 (the gap's .10 not)
        ("B", round(70 / 3600, 3), 0.07, 0.14, 50.0, 3.6),
        # A: idle at 10, 40, 50 and 90 s: 40 s, .04 L of .12
        ("A", round(40 / 3600, 3), 0.04, 0.12, 33.33, 3.6),
        ("C", 0.0, 0.0, 0.05, 0.0, None),
        ("D", 0.0, 0.0, 0.24, 0.0, None),
        ("E", 0.0, 0.0, 0.24, 0.0, None),
    ]


def test_idle_with_since_filter(lake):
    # From 10:00:00: A rows 60..120 s: idle only at 90 s (.01 L of .05).
    got = rows(lake, "idle", Filters.parse(since="2026-11-17T10:00", vins=["A"]))
    assert pick(got, "vin", "idle_fuel_l", "fuel_l") == [("A", 0.01, 0.05)]


# --- by-mode / by-road ---------------------------------------------------------------------------


def test_by_mode_sums_the_cars_of_each_drive_mode(lake):
    got = rows(lake, "by-mode")
    assert pick(
        got, "mode", "cars", "distance_km", "fuel_l", "l_per_100km", "km_per_l", "mean_car_l_per_100km"
    ) == [
        ("ECONOMY", 2, 3.3, 0.36, 10.909, 9.167, 10.909),
        ("NORMAL", 1, 2.0, 0.24, 12.0, 8.333, 12.0),
        ("SPORT", 1, 1.85, 0.24, 12.973, 7.708, 12.973),
    ]


def test_by_road_classifies_car_minutes_by_mean_speed(tmp_path):
    start = dt.datetime(2026, 11, 17, 10, 0, tzinfo=UTC)
    # Per minute: km and litres per 10 s interval, and the speed shown.
    minutes = [(0.05, 0.005, 18.0), (0.15, 0.01, 54.0), (0.25, 0.02, 90.0), (0.0, 0.002, 0.0)]
    engine, chassis = [], []
    odo, fuel, seq = 100.0, 10.0, 0
    for minute, (km, litres, speed) in enumerate(minutes):
        for tick in range(6):
            if minute or tick:  # the very first row has no previous one: nothing is known of it
                odo, fuel = odo + km, fuel + litres
            ts = start + dt.timedelta(minutes=minute, seconds=10 * tick)
            seq += 1
            env = {"vin": "F", "ts": ts, "seq": seq, "schema_version": 1}
            engine.append(env | {"engine_running": True, "fuel_used_l": round(fuel, 6)})
            chassis.append(env | {"speed_kmh": speed, "odometer_km": round(odo, 6)})
    write_frames(tmp_path, "engine", engine)
    write_frames(tmp_path, "chassis", chassis)
    db = Lake(tmp_path)
    try:
        got = rows(db, "by-road")
    finally:
        db.close()
    # minute 0: 5 known intervals, .25 km in 50 s = 18 km/h (urban); minute 1: .9 km/min = 54 km/h
    # (suburban); minute 2: 1.5 km/min = 90 km/h (highway); minute 3: standing, .012 L.
    assert pick(
        got, "road", "car_minutes", "cars", "distance_km", "fuel_l", "l_per_100km", "distance_share_pct"
    ) == [
        ("urban", 1, 1, 0.25, 0.025, 10.0, round(100 * 0.25 / 2.65, 2)),
        ("suburban", 1, 1, 0.9, 0.06, 6.667, round(100 * 0.9 / 2.65, 2)),
        ("highway", 1, 1, 1.5, 0.12, 8.0, round(100 * 1.5 / 2.65, 2)),
        ("standing", 1, 1, 0.0, 0.012, None, 0.0),
    ]


# --- health / open alerts ------------------------------------------------------------------------

HEALTH = ("vin", "episodes", "critical", "warning", "info", "open", "open_critical")


def test_health_counts_episodes_by_highest_severity_and_open_ones(lake):
    assert pick(rows(lake, "health"), *HEALTH) == [
        ("B", 2, 1, 1, 0, 2, 1),  # the duplicated dtc record is one episode
        ("A", 2, 1, 1, 0, 1, 1),  # coolant escalated to critical and never cleared
        ("D", 1, 0, 1, 0, 0, 0),
    ]


def test_health_since_counts_episodes_in_range_but_open_ones_as_of_now(lake):
    got = rows(lake, "health", Filters.parse(since="2026-11-17"))
    # B's battery episode began the day before: not in the range, still open.
    assert pick(got, *HEALTH) == [("B", 1, 1, 0, 0, 2, 1), ("A", 2, 1, 1, 0, 1, 1), ("D", 1, 0, 1, 0, 0, 0)]


def test_health_until_sees_the_state_at_that_time(lake):
    got = rows(lake, "health", Filters.parse(until="2026-11-17T10:02Z"))
    # D's brake pads were cleared at 10:05: still open at 10:02.
    assert pick(got, *HEALTH) == [("B", 2, 1, 1, 0, 2, 1), ("A", 2, 1, 1, 0, 1, 1), ("D", 1, 0, 1, 0, 1, 0)]


def test_open_alerts_lists_raised_or_escalated_without_a_later_clear(lake):
    got = rows(lake, "open-alerts")
    assert pick(got, "vin", "rule", "severity", "started_at", "last_ts", "value", "alert_id") == [
        ("A", "coolant_temp", "critical", at("A", 30), at("A", 90), "1.0", "a-cool"),
        ("B", "dtc_new", "critical", at("B", 40), at("B", 40), "P0300", "b-dtc"),
        ("B", "battery_voltage", "warning", T_OLD, T_OLD, "1.0", "b-batt"),
    ]
    assert pick(rows(lake, "open-alerts", Filters(vins=("A",))), "alert_id") == [("a-cool",)]


# --- freshness -----------------------------------------------------------------------------------


def test_freshness_newest_times_and_lag_per_table(lake):
    now = dt.datetime(2026, 11, 18, 0, 1, tzinfo=UTC)
    got = rows(lake, "freshness", now=now)
    newest = DAY2 + dt.timedelta(seconds=10)  # E's last row, 00:00:15
    last_alert = dt.datetime(2026, 11, 17, 10, 5, tzinfo=UTC)
    received = newest + dt.timedelta(milliseconds=250)
    assert pick(
        got, "table", "rows", "cars", "newest_ts", "newest_received_at", "ts_lag_s", "received_lag_s"
    ) == [
        ("engine", 33, 5, newest, received, 45.0, 44.75),
        ("transmission", 31, 4, newest, received, 45.0, 44.75),
        ("electronics", 0, 0, None, None, None, None),
        ("chassis", 33, 5, newest, received, 45.0, 44.75),
        ("infotainment", 0, 0, None, None, None, None),
        ("alerts", 9, 3, last_alert, last_alert + dt.timedelta(milliseconds=100), 50160.0, 50159.9),
    ]


# --- an empty lake, unknown names ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(QUERIES))
def test_every_query_runs_on_a_lake_that_does_not_exist_yet(tmp_path, name):
    db = Lake(tmp_path / "no-lake")
    try:
        got = rows(db, name)
    finally:
        db.close()
    if name == "freshness":
        assert [r["rows"] for r in got] == [0] * 6
    else:
        assert got == []


def test_unknown_query_name_is_a_query_error(lake):
    with pytest.raises(QueryError, match="unknown query 'fastest'"):
        run_query(lake, "fastest", Filters(), DEFAULTS)


def test_t0_is_in_the_partitions_the_test_expects(lake_dir):
    # The fixture spans two hours and two days, so the filters cross partition folders.
    folders = sorted(p.relative_to(lake_dir / "engine").as_posix() for p in (lake_dir / "engine").glob("*/*"))
    assert folders == ["date=2026-11-17/hour=09", "date=2026-11-17/hour=10", "date=2026-11-18/hour=00"]
    assert T0.hour == 9


def test_duplicate_frames_change_nothing(lake, tmp_path):
    # At-least-once: every frame of the lake is there twice (redelivered, other offsets).
    from tests.unit.services.query.conftest import frames

    for subsystem, records in frames().items():
        write_frames(tmp_path, subsystem, records + records)
    twice = Lake(tmp_path)
    try:
        settings = QuerySettings(stop_s=60, gap_s=30)
        for name in ("leaderboard", "trips", "idle", "by-mode", "by-road"):
            assert rows(twice, name, settings=settings) == rows(lake, name, settings=settings), name
    finally:
        twice.close()
