"""The fleet's canned questions, each one SQL statement over the lake's views.

    run_query(lake, "leaderboard", Filters.parse(since="2026-11-17"), QuerySettings())

| name | answers |
|---|---|
| leaderboard | fuel efficiency per car: L/100 km, km/L, rank (1 = least fuel per km), fleet percentile |
| trips | trips per car (engine on, cut at long stops and data gaps): distance, fuel, efficiency, idle fuel |
| by-road | efficiency by road type, inferred from each car-minute's mean speed (frames carry no road type) |
| by-mode | efficiency by drive mode (`performance_mode`, the only driver-related signal frames carry) |
| idle | fuel burned standing still with the engine running, per car |
| health | alert episodes per car by severity, and how many are open now |
| open-alerts | the alert episodes open now: raised or escalated, not cleared |
| freshness | newest event time and receive time per table, and their lag behind now |

How the numbers are made (the same rules the unit tests compute by hand):

- Leaderboard: rank 1 = the least fuel per km (cars equal to the shown 0.001 L/100 km share a
  rank); percentile = 100 x (1 - (rank - 1) / (cars - 1)): 100 for the best, 0 for the worst, the
  share of the other cars a car is at least as efficient as. Cars that drove less than
  FLEET_QUERY_MIN_KM in the range are left out (a few hundred metres say nothing about a car).
- Distance and fuel come from the cars' cumulative counters, `odometer_km` (chassis) and
  `fuel_used_l` (engine), never from integrating speeds or rates. The leaderboard takes each
  counter's max - min over the range per car: no join and no sort, and blind to duplicates and
  order (the lake is at-least-once: a frame may be there twice). Files wholly inside the range
  answer from the per-car min/max in their footer instead of their rows (totals.py; the same
  numbers, FLEET_QUERY_ROLLUPS=false scans every row), so a whole-range leaderboard reads footers.
- Trips, idle and by-road need the two counters side by side in time: engine and chassis frames
  of a car are joined on their `ts` (a car stamps all five subsystems of a tick alike), and each
  row carries the change of each counter since the car's previous row: the interval
  (previous ts, ts], attributed to the state at ts (the simulator burns a tick's fuel at the speed
  it ends with). A frame that is in the lake twice ties on `ts` and adds a change of zero, so no
  deduplication pass is needed (one cost half the query time). An interval longer than
  FLEET_QUERY_GAP_S (a silent telematics unit, a lake gap) is unknown: its change counts nowhere.
- Idle: an interval whose row has the engine running and `speed_kmh` = 0.
- A trip: consecutive rows with the engine running, cut where the engine is off (`engine_running`,
  the engine topic's twin of the ignition), at a data gap, and at a long stop (standing still with
  the engine running for FLEET_QUERY_STOP_S or more between the first and last frame at rest; the
  stop itself belongs to no trip). A trip also owns the interval that ends it (the last metres to
  the parking spot or the stop). Trips that never moved are not listed; a trip cut by --since or
  --until is counted from the part inside the range.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

from services.query.filters import Filters
from services.query.lake import Lake, QueryError, Result
from services.query.settings import QuerySettings
from services.query.totals import counter_range, plan

# Road type from a car-minute's mean speed over the minute's known intervals (km/h): the simulator's
# urban roads (50 km/h limit, a stop every ~350 m) average well under 40, suburban (70 km/h) about
# 45-65, highways (120 km/h) above 80.
URBAN_MAX_KMH = 40.0
SUBURBAN_MAX_KMH = 80.0


def _leaderboard(f: Filters, s: QuerySettings, totals: str) -> str:
    return f"""
WITH {totals}, cars AS (
    -- ranked on the shown precision: cars equal to 0.001 L/100 km share a rank
    SELECT vin, distance_km, fuel_l, round(fuel_l / distance_km * 100, 3) AS l_per_100km,
        CASE WHEN fuel_l > 0 THEN distance_km / fuel_l END AS km_per_l
    FROM dist JOIN fuel USING (vin)
    WHERE distance_km >= $min_km AND distance_km > 0
)
SELECT rank() OVER (ORDER BY l_per_100km) AS rank, vin,
    round(distance_km, 3) AS distance_km, round(fuel_l, 3) AS fuel_l,
    l_per_100km, round(km_per_l, 3) AS km_per_l,
    round(100 * (1 - percent_rank() OVER (ORDER BY l_per_100km)), 1) AS percentile
FROM cars ORDER BY rank, vin
"""


def _steps(f: Filters) -> str:
    """CTEs ending in `known`: one row per (vin, ts) with the counters' change since the last row."""
    return f"""
ticks AS (
    SELECT e.vin, e.ts, coalesce(e.engine_running, false) AS running, e.fuel_used_l,
        c.odometer_km, c.speed_kmh
    FROM (SELECT vin, ts, engine_running, fuel_used_l FROM engine WHERE {f.where()}) AS e
    LEFT JOIN (SELECT vin, ts, odometer_km, speed_kmh FROM chassis WHERE {f.where()}) AS c
        ON c.vin = e.vin AND c.ts = e.ts
), deltas AS (
    SELECT vin, ts, running, speed_kmh,
        -- frames twice in the lake (at-least-once) tie on ts: rn fixes one order for every later window
        row_number() OVER w AS rn,
        epoch(ts) - epoch(lag(ts) OVER w) AS dt_s,
        fuel_used_l - lag(fuel_used_l IGNORE NULLS) OVER w AS d_fuel_raw,
        odometer_km - lag(odometer_km IGNORE NULLS) OVER w AS d_km_raw
    FROM ticks WINDOW w AS (PARTITION BY vin ORDER BY ts)
), known AS (
    SELECT vin, ts, rn, running, speed_kmh, dt_s,
        coalesce(dt_s <= $gap_s, false) AS contiguous,
        coalesce(running AND speed_kmh = 0, false) AS still,
        CASE WHEN contiguous THEN dt_s END AS known_s,
        -- a counter going backwards was reset (a new ECU): that interval is unknown too
        CASE WHEN contiguous AND d_fuel_raw >= 0 THEN d_fuel_raw END AS d_fuel,
        CASE WHEN contiguous AND d_km_raw >= 0 THEN d_km_raw END AS d_km
    FROM deltas
)"""


def _trip_rows(f: Filters) -> str:
    """CTEs ending in `attributed`: `known` rows with the trip (vin, trip_no) each interval belongs to."""
    return f"""{_steps(f)}, islands AS (
    SELECT *, rn - row_number() OVER (PARTITION BY vin, still ORDER BY rn) AS island
    FROM known
), stops AS (
    SELECT *, still AND epoch(max(ts) OVER s) - epoch(min(ts) OVER s) >= $stop_s AS long_stop
    FROM islands WINDOW s AS (PARTITION BY vin, still, island)
), marked AS (
    SELECT *, running AND NOT long_stop AS in_trip FROM stops
), starts AS (
    SELECT *, coalesce(lag(in_trip) OVER w, false) AS prev_in_trip,
        in_trip AND NOT (prev_in_trip AND contiguous) AS starts
    FROM marked WINDOW w AS (PARTITION BY vin ORDER BY rn)
), attributed AS (
    SELECT *, sum(CAST(starts AS INTEGER)) OVER (PARTITION BY vin ORDER BY rn ROWS UNBOUNDED PRECEDING)
        AS trip_no,
        in_trip OR (prev_in_trip AND contiguous) AS in_trip_interval
    FROM starts
)"""


def _trips(f: Filters, s: QuerySettings, totals: str) -> str:
    return f"""
WITH {_trip_rows(f)}, trips AS (
    SELECT vin, trip_no, min(ts) FILTER (WHERE in_trip) AS start, max(ts) AS "end",
        coalesce(sum(d_km), 0) AS distance_km, coalesce(sum(d_fuel), 0) AS fuel_l,
        coalesce(sum(d_fuel) FILTER (WHERE still), 0) AS idle_fuel_l
    FROM attributed WHERE in_trip_interval AND trip_no > 0 GROUP BY vin, trip_no
)
SELECT vin, row_number() OVER (PARTITION BY vin ORDER BY start) AS trip, start, "end",
    round((epoch("end") - epoch(start)) / 60, 2) AS minutes,
    round(distance_km, 3) AS distance_km, round(fuel_l, 4) AS fuel_l,
    round(fuel_l / distance_km * 100, 3) AS l_per_100km,
    round(CASE WHEN fuel_l > 0 THEN distance_km / fuel_l END, 3) AS km_per_l,
    round(idle_fuel_l, 4) AS idle_fuel_l
FROM trips WHERE distance_km > 0
ORDER BY vin, start
"""


def _idle(f: Filters, s: QuerySettings, totals: str) -> str:
    return f"""
WITH {_steps(f)}, per_car AS (
    SELECT vin,
        coalesce(sum(known_s) FILTER (WHERE still), 0) AS idle_s,
        coalesce(sum(d_fuel) FILTER (WHERE still), 0) AS idle_fuel_l,
        coalesce(sum(d_fuel), 0) AS fuel_l
    FROM known GROUP BY vin
)
SELECT vin, round(idle_s / 3600, 3) AS idle_h, round(idle_fuel_l, 4) AS idle_fuel_l,
    round(fuel_l, 4) AS fuel_l,
    round(CASE WHEN fuel_l > 0 THEN 100 * idle_fuel_l / fuel_l END, 2) AS idle_share_pct,
    round(CASE WHEN idle_s > 0 THEN idle_fuel_l / (idle_s / 3600) END, 3) AS idle_lph
FROM per_car ORDER BY idle_fuel_l DESC, vin
"""


def _by_road(f: Filters, s: QuerySettings, totals: str) -> str:
    return f"""
WITH {_steps(f)}, minutes AS (
    SELECT vin, time_bucket(INTERVAL 1 MINUTE, ts) AS minute,
        coalesce(sum(d_km), 0) AS km, coalesce(sum(d_fuel), 0) AS fuel, sum(known_s) AS secs
    FROM known WHERE running AND contiguous GROUP BY vin, minute
), classified AS (
    SELECT *, CASE
        WHEN km <= 0 THEN 'standing'
        WHEN km / (secs / 3600) < {URBAN_MAX_KMH} THEN 'urban'
        WHEN km / (secs / 3600) < {SUBURBAN_MAX_KMH} THEN 'suburban'
        ELSE 'highway' END AS road
    FROM minutes
)
SELECT road, count(*) AS car_minutes, count(DISTINCT vin) AS cars,
    round(sum(km), 3) AS distance_km, round(sum(fuel), 3) AS fuel_l,
    round(CASE WHEN sum(km) > 0 THEN sum(fuel) / sum(km) * 100 END, 3) AS l_per_100km,
    round(CASE WHEN sum(fuel) > 0 THEN sum(km) / sum(fuel) END, 3) AS km_per_l,
    round(100 * sum(km) / sum(sum(km)) OVER (), 2) AS distance_share_pct
FROM classified GROUP BY road
ORDER BY list_position(['urban', 'suburban', 'highway', 'standing'], road)
"""


def _by_mode(f: Filters, s: QuerySettings, totals: str) -> str:
    return f"""
WITH {totals}, modes AS (
    SELECT vin, mode(performance_mode) AS mode
    FROM transmission WHERE {f.where()} AND performance_mode IS NOT NULL GROUP BY vin
), cars AS (
    SELECT vin, coalesce(mode, 'unknown') AS mode, distance_km, fuel_l,
        fuel_l / distance_km * 100 AS l_per_100km
    FROM dist JOIN fuel USING (vin) LEFT JOIN modes USING (vin)
    WHERE distance_km >= $min_km AND distance_km > 0
)
SELECT mode, count(*) AS cars, round(sum(distance_km), 3) AS distance_km, round(sum(fuel_l), 3) AS fuel_l,
    round(sum(fuel_l) / sum(distance_km) * 100, 3) AS l_per_100km,
    round(CASE WHEN sum(fuel_l) > 0 THEN sum(distance_km) / sum(fuel_l) END, 3) AS km_per_l,
    round(avg(l_per_100km), 3) AS mean_car_l_per_100km
FROM cars GROUP BY mode ORDER BY l_per_100km, mode
"""


def _episodes(f: Filters) -> str:
    """CTE `episodes`: one row per alert_id as of --until, with its highest severity and whether open."""
    in_range = "bool_or(ts >= $since)" if f.since is not None else "true"
    return f"""
episodes AS (
    SELECT alert_id, any_value(vin) AS vin, any_value(rule) AS rule, any_value(signal) AS signal,
        CASE max(CASE severity WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END)
            WHEN 3 THEN 'critical' WHEN 2 THEN 'warning' ELSE 'info' END AS severity,
        min(started_at) AS started_at, max(ts) AS last_ts,
        arg_max(value, ts) AS value, arg_max(threshold, ts) AS threshold, arg_max(message, ts) AS message,
        max(ts) FILTER (WHERE status IN ('raised', 'escalated')) AS opened_ts,
        max(ts) FILTER (WHERE status = 'cleared') AS cleared_ts,
        opened_ts IS NOT NULL AND (cleared_ts IS NULL OR cleared_ts < opened_ts) AS open,
        {in_range} AS in_range
    FROM alerts WHERE {f.where(since=False)} GROUP BY alert_id
)"""


def _health(f: Filters, s: QuerySettings, totals: str) -> str:
    return f"""
WITH {_episodes(f)}
SELECT vin, count(*) FILTER (WHERE in_range) AS episodes,
    count(*) FILTER (WHERE in_range AND severity = 'critical') AS critical,
    count(*) FILTER (WHERE in_range AND severity = 'warning') AS warning,
    count(*) FILTER (WHERE in_range AND severity = 'info') AS info,
    count(*) FILTER (WHERE open) AS open,
    count(*) FILTER (WHERE open AND severity = 'critical') AS open_critical
FROM episodes GROUP BY vin HAVING episodes > 0 OR open > 0
ORDER BY open_critical DESC, open DESC, critical DESC, episodes DESC, vin
"""


def _open_alerts(f: Filters, s: QuerySettings, totals: str) -> str:
    return f"""
WITH {_episodes(f)}
SELECT vin, rule, signal, severity, started_at, last_ts, value, threshold, message, alert_id
FROM episodes WHERE open
ORDER BY list_position(['critical', 'warning', 'info'], severity), started_at, vin, alert_id
"""


def _freshness(f: Filters, s: QuerySettings, totals: str) -> str:
    parts = [
        f"""SELECT '{view}' AS "table", {i} AS pos, count(*) AS rows, count(DISTINCT vin) AS cars,
        max(ts) AS newest_ts, max(received_at) AS newest_received_at
    FROM {view} WHERE {f.where()}"""
        for i, view in enumerate(
            ("engine", "transmission", "electronics", "chassis", "infotainment", "alerts")
        )
    ]
    union = "\n    UNION ALL ".join(parts)
    return f"""
WITH newest AS (
    {union}
)
SELECT "table", rows, cars, newest_ts, newest_received_at,
    round(epoch($now) - epoch(newest_ts), 3) AS ts_lag_s,
    round(epoch($now) - epoch(newest_received_at), 3) AS received_lag_s
FROM newest ORDER BY pos
"""


@dataclasses.dataclass(frozen=True)
class Query:
    """One canned question.

    `sql(filters, settings, totals)`: `totals` holds the CTEs `dist` (vin, distance_km) and `fuel`
    (vin, fuel_l), each car's counter change over the range, for the queries that rank cars
    (`ranks_cars`); it is empty for the others.
    """

    name: str
    help: str
    sql: Callable[[Filters, QuerySettings, str], str]
    ranks_cars: bool = False


QUERIES: dict[str, Query] = {
    q.name: q
    for q in (
        Query(
            "leaderboard",
            "fuel efficiency per car: L/100 km, km/L, rank, fleet percentile",
            _leaderboard,
            ranks_cars=True,
        ),
        Query("trips", "trips per car (engine on, cut at long stops): distance, fuel, efficiency", _trips),
        Query("by-road", "efficiency by road type, inferred from each car-minute's mean speed", _by_road),
        Query(
            "by-mode",
            "efficiency by drive mode (performance_mode: eco / normal / sport)",
            _by_mode,
            ranks_cars=True,
        ),
        Query("idle", "fuel burned standing still with the engine running, per car", _idle),
        Query("health", "alert episodes per car by severity, and how many are open now", _health),
        Query("open-alerts", "alert episodes raised or escalated and not cleared", _open_alerts),
        Query("freshness", "newest event and receive time per table, lag behind now", _freshness),
    )
}


def find_query(name: str) -> Query:
    """The canned query called `name`; QueryError for an unknown name."""
    query = QUERIES.get(name)
    if query is None:
        raise QueryError(f"unknown query {name!r}: expected one of {', '.join(QUERIES)}")
    return query


def car_totals(lake: Lake, f: Filters, settings: QuerySettings) -> tuple[str, dict[str, Any]]:
    """The `dist` and `fuel` CTEs over the lake's current files, and their parameters (totals.py)."""
    ctes: list[str] = []
    params: dict[str, Any] = {}
    for name, alias, view, column in (
        ("dist", "distance_km", "chassis", "odometer_km"),
        ("fuel", "fuel_l", "engine", "fuel_used_l"),
    ):
        source = plan(lake.files[view], view, column, f, use_rollups=settings.rollups)
        cte, values = counter_range(name, alias, source, f)
        ctes.append(cte)
        params |= values
    return ", ".join(ctes), params


def run_query(
    lake: Lake,
    name: str,
    filters: Filters,
    settings: QuerySettings,
    now: dt.datetime | None = None,
) -> Result:
    """Run a canned query; `now` (default: the wall clock) is what freshness measures lag against."""
    query = find_query(name)
    values = {
        "gap_s": settings.gap_s,
        "stop_s": settings.stop_s,
        "min_km": settings.min_km,
        "now": now or dt.datetime.now(dt.UTC),
    }

    def build() -> tuple[str, dict[str, Any]]:
        totals, params = car_totals(lake, filters, settings) if query.ranks_cars else ("", {})
        sql = query.sql(filters, settings, totals)
        params |= filters.params(sql) | {k: v for k, v in values.items() if f"${k}" in sql}
        return sql, params

    return lake.execute_built(build)
