"""The catalog is the single source: Arrow schemas, validator and export must agree with it."""

import json
import re

import pyarrow as pa
import pytest

from schemas.arrow import SCHEMAS, arrow_type
from schemas.catalog import BY_SUBSYSTEM, ENVELOPE, SIGNALS, SUBSYSTEMS
from schemas.export import to_markdown, to_vss_json
from schemas.validate import _RULES, validate_frame

REQUIRED = {
    "speed_kmh",
    "odometer_km",
    "fuel_used_l",
    "fuel_rate_lph",
    "fuel_level_pct",
    "engine_rpm",
    "engine_load_pct",
    "throttle_pct",
    "coolant_temp_c",
    "oil_pressure_kpa",
    "oil_temp_c",
    "engine_running",
    "ignition",
    "gear",
    "trans_temp_c",
    "battery_voltage_v",
    "battery_current_a",
    "dtc_list",
    "tire_fl_kpa",
    "tire_fr_kpa",
    "tire_rl_kpa",
    "tire_rr_kpa",
    "brake_pad_wear_front_pct",
    "lat",
    "lon",
    "heading_deg",
    "nav_dest_lat",
    "media_source",
    "volume_pct",
}


def test_at_least_40_signals_over_all_five_subsystems():
    assert len(SIGNALS) >= 40
    assert all(BY_SUBSYSTEM[sub] for sub in SUBSYSTEMS)


def test_fuel_and_health_signals_are_present():
    assert REQUIRED <= {s.name for s in SIGNALS}


def test_names_are_unique_short_snake_case_with_vss_paths():
    names = [s.name for s in SIGNALS]
    assert len(names) == len(set(names))
    for s in SIGNALS:
        assert re.fullmatch(r"[a-z][a-z0-9_]{1,30}", s.name), s.name
        assert s.vss.startswith("Vehicle."), s.vss
        assert s.description
        if s.type in ("float", "int"):
            assert s.min is not None and s.max is not None and s.min < s.max, s.name


def test_arrow_schema_has_envelope_then_every_signal_in_order():
    for sub in SUBSYSTEMS:
        schema = SCHEMAS[sub]
        assert schema.names == [*ENVELOPE, *(s.name for s in BY_SUBSYSTEM[sub])]
        assert schema.field("ts").type == pa.timestamp("ms", tz="UTC")
        for s in BY_SUBSYSTEM[sub]:
            field = schema.field(s.name)
            assert field.type == arrow_type(s)
            assert field.metadata[b"vss"].decode() == s.vss


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.name)
def test_int_columns_hold_the_whole_catalog_range(signal):
    if signal.type != "int":
        return
    typ = arrow_type(signal)
    pa.array([int(signal.min), int(signal.max)], type=typ)  # raises if the range does not fit


def test_validator_rules_are_exactly_the_catalog():
    for sub in SUBSYSTEMS:
        assert set(_RULES[sub]) == {s.name for s in BY_SUBSYSTEM[sub]}


@pytest.mark.parametrize("signal", SIGNALS, ids=lambda s: s.name)
def test_validator_accepts_bounds_and_rejects_beyond(signal):
    head = {"vin": "1FLEET00000000001", "ts": 1_795_000_000_000, "seq": 1, "schema_version": 1}
    if signal.type in ("float", "int"):
        assert validate_frame(signal.subsystem, {**head, signal.name: signal.min}) is None
        assert validate_frame(signal.subsystem, {**head, signal.name: signal.max}) is None
        over = validate_frame(signal.subsystem, {**head, signal.name: signal.max + 1})
        assert over is not None and over.reason == "out_of_range"
    elif signal.allowed:
        assert validate_frame(signal.subsystem, {**head, signal.name: signal.allowed[0]}) is None
        bad = validate_frame(signal.subsystem, {**head, signal.name: "NOPE"})
        assert bad is not None and bad.reason == "out_of_range"
    wrong = {"float": "x", "int": 1.5, "bool": 1, "string": 3, "string[]": "P0300"}[signal.type]
    problem = validate_frame(signal.subsystem, {**head, signal.name: wrong})
    assert problem is not None and problem.reason == "schema_violation"


def test_markdown_export_has_one_row_per_signal():
    rows = [line for line in to_markdown().splitlines() if line.startswith("| `")]
    assert len(rows) == len(SIGNALS)


def test_vss_json_export_has_a_leaf_per_signal_at_its_path():
    tree = json.loads(to_vss_json())
    for s in SIGNALS:
        node = {"children": tree}
        for part in s.vss.split("."):
            node = node["children"][part] if "children" in node else node[part]
        assert node["type"] == "sensor"
        assert node["x-fleet"]["name"] == s.name
