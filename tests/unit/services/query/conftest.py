"""A small lake with hand-chosen values, written in the contract layout (see lakewriter.py).

Cars (10 s ticks from T0 = 2026-11-17T09:59:00Z, so rows fall in hours 09 and 10):

A  parked, warm-up idle, drives, stops 20 s, drives, parks; later a second short trip.
   odometer 1000.0 -> 1001.1 km, fuel 500.00 -> 500.12 L: 1.1 km, 0.12 L, 10.909 L/100 km.
B  drives, stands 60 s with the engine on (a long stop when FLEET_QUERY_STOP_S=60), drives, then
   a 100 s data gap, drives, parks. 2000.0 -> 2001.85 km, 800.00 -> 800.24 L: 12.973 L/100 km.
C  0.5 km only: below FLEET_QUERY_MIN_KM=1, left out of the leaderboard.
D  2.2 km, 0.24 L: 10.909 L/100 km, tied with A.
E  on the next day (2026-11-18): 2.0 km, 0.24 L: 12.0 L/100 km.

Drive modes (transmission.performance_mode): A, D ECONOMY; E NORMAL; B SPORT; C none.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.unit.services.query.lakewriter import write_alerts, write_frames

T0 = dt.datetime(2026, 11, 17, 9, 59, tzinfo=dt.UTC)
DAY2 = dt.datetime(2026, 11, 18, 0, 0, 5, tzinfo=dt.UTC)

# (seconds after the car's start, engine running, speed km/h, odometer km, fuel used L)
ROWS = {
    "A": (
        T0,
        [
            (0, False, 0, 1000.0, 500.00),
            (10, True, 0, 1000.0, 500.01),  # warm-up idle
            (20, True, 36, 1000.1, 500.02),
            (30, True, 72, 1000.3, 500.04),
            (40, True, 0, 1000.4, 500.05),  # stop (20 s: short)
            (50, True, 0, 1000.4, 500.06),
            (60, True, 36, 1000.5, 500.07),  # hour 10 from here on
            (70, False, 0, 1000.55, 500.07),  # parked: closes trip 1
            (80, False, 0, 1000.55, 500.07),
            (90, True, 0, 1000.55, 500.08),  # trip 2
            (100, True, 90, 1000.8, 500.10),
            (110, True, 90, 1001.05, 500.12),
            (120, False, 0, 1001.1, 500.12),  # parked: closes trip 2
        ],
    ),
    "B": (
        T0,
        [
            (0, True, 0, 2000.0, 800.00),  # first row: no previous row, its change is unknown
            (10, True, 50, 2000.2, 800.02),
            (20, True, 0, 2000.3, 800.03),  # long stop from 20 s to 80 s
            (30, True, 0, 2000.3, 800.04),
            (40, True, 0, 2000.3, 800.05),
            (50, True, 0, 2000.3, 800.06),
            (60, True, 0, 2000.3, 800.07),
            (70, True, 0, 2000.3, 800.08),
            (80, True, 0, 2000.3, 800.09),
            (90, True, 50, 2000.4, 800.10),
            (100, True, 50, 2000.6, 800.12),
            # 100 s without frames: a data gap
            (200, True, 50, 2001.6, 800.22),
            (210, True, 50, 2001.8, 800.24),
            (220, False, 0, 2001.85, 800.24),
        ],
    ),
    "C": (T0, [(0, True, 30, 3000.0, 100.00), (10, True, 30, 3000.5, 100.05)]),
    "D": (T0, [(0, True, 40, 500.0, 50.00), (10, True, 40, 502.2, 50.24)]),
    "E": (DAY2, [(0, True, 40, 700.0, 70.00), (10, True, 40, 702.0, 70.24)]),
}
MODES = {"A": "ECONOMY", "D": "ECONOMY", "E": "NORMAL", "B": "SPORT"}


def at(vin: str, seconds: float) -> dt.datetime:
    """The time of one of a car's rows."""
    return ROWS[vin][0] + dt.timedelta(seconds=seconds)


def frames() -> dict[str, list[dict[str, object]]]:
    """engine, chassis and transmission frames of every car."""
    out: dict[str, list[dict[str, object]]] = {"engine": [], "chassis": [], "transmission": []}
    for vin, (start, rows) in ROWS.items():
        for seq, (sec, running, speed, odo, fuel) in enumerate(rows, start=1):
            ts = start + dt.timedelta(seconds=sec)
            env = {"vin": vin, "ts": ts, "seq": seq, "schema_version": 1}
            out["engine"].append(env | {"engine_running": running, "fuel_used_l": fuel})
            out["chassis"].append(env | {"speed_kmh": float(speed), "odometer_km": odo})
            if vin in MODES:
                out["transmission"].append(env | {"performance_mode": MODES[vin]})
    return out


def alert(alert_id, vin, rule, severity, status, ts, **extra):
    """One alert record."""
    record = {
        "alert_id": alert_id,
        "vin": vin,
        "rule": rule,
        "subsystem": "engine",
        "severity": severity,
        "status": status,
        "value": 1.0,
        "threshold": 2.0,
        "started_at": extra.pop("started_at", ts),
        "ts": ts,
        "detected_at": ts + dt.timedelta(milliseconds=300),
        "message": f"{rule} {status}",
        "signal": "",
    }
    return record | extra


T_OLD = dt.datetime(2026, 11, 16, 8, 0, tzinfo=dt.UTC)
ALERTS = [
    # A: coolant raised (warning), escalated (critical), never cleared -> open, critical
    alert("a-cool", "A", "coolant_temp", "warning", "raised", T0 + dt.timedelta(seconds=30)),
    alert(
        "a-cool",
        "A",
        "coolant_temp",
        "critical",
        "escalated",
        T0 + dt.timedelta(seconds=90),
        started_at=T0 + dt.timedelta(seconds=30),
    ),
    # A: tire low raised and cleared -> closed, warning
    alert("a-tire", "A", "tire_pressure_low", "warning", "raised", T0 + dt.timedelta(seconds=20)),
    alert(
        "a-tire",
        "A",
        "tire_pressure_low",
        "warning",
        "cleared",
        T0 + dt.timedelta(seconds=110),
        started_at=T0 + dt.timedelta(seconds=20),
    ),
    # B: a critical trouble code, written twice (at-least-once) -> one open critical episode
    alert("b-dtc", "B", "dtc_new", "critical", "raised", T0 + dt.timedelta(seconds=40), value="P0300"),
    alert("b-dtc", "B", "dtc_new", "critical", "raised", T0 + dt.timedelta(seconds=40), value="P0300"),
    # B: battery warning raised the day before, never cleared -> open, outside --since 2026-11-17
    alert("b-batt", "B", "battery_voltage", "warning", "raised", T_OLD),
    # D: brake pads raised at 10:00:00, cleared at 10:05:00 -> open as of --until 10:02
    alert(
        "d-pads", "D", "brake_pad_wear", "warning", "raised", dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC)
    ),
    alert(
        "d-pads",
        "D",
        "brake_pad_wear",
        "warning",
        "cleared",
        dt.datetime(2026, 11, 17, 10, 5, tzinfo=dt.UTC),
        started_at=dt.datetime(2026, 11, 17, 10, 0, tzinfo=dt.UTC),
    ),
]


@pytest.fixture(scope="session")
def lake_dir(tmp_path_factory) -> Path:
    """The hand-made lake (written once per test session)."""
    lake = tmp_path_factory.mktemp("query") / "lake"
    for subsystem, rows in frames().items():
        write_frames(lake, subsystem, rows)
    write_alerts(lake, ALERTS)
    return lake


@pytest.fixture(scope="session")
def lake(lake_dir):
    """A Lake over the hand-made lake."""
    from services.query.lake import Lake

    db = Lake(lake_dir)
    yield db
    db.close()
