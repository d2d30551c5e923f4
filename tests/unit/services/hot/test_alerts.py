"""The alert record: deterministic episode ids, compact JSON that round-trips, strict parsing."""

from __future__ import annotations

import json

import pytest

from services.hot.alerts import SEVERITIES, STATUSES, Alert, alert_id

VIN = "1FLEET00000000042"


def make(**overrides) -> Alert:
    fields = {
        "alert_id": alert_id(VIN, "coolant_temp", 1_795_000_433_000),
        "vin": VIN,
        "rule": "coolant_temp",
        "subsystem": "engine",
        "severity": "warning",
        "status": "raised",
        "value": 112.4,
        "threshold": 110.0,
        "started_at": 1_795_000_433_000,
        "ts": 1_795_000_463_000,
        "detected_at": 1_795_000_463_120,
        "message": "coolant temperature 112.4 °C above 110 °C",
    }
    return Alert(**(fields | overrides))


def test_alert_id_is_deterministic_and_hex():
    first = alert_id(VIN, "coolant_temp", 1_795_000_433_000)
    assert first == alert_id(VIN, "coolant_temp", 1_795_000_433_000)
    assert len(first) == 32 and int(first, 16) >= 0


def test_alert_id_changes_with_each_part_of_the_episode_identity():
    base = alert_id(VIN, "tire_puncture", 1000, "tire_fl_kpa")
    others = {
        alert_id("1FLEET00000000043", "tire_puncture", 1000, "tire_fl_kpa"),
        alert_id(VIN, "tire_pressure_low", 1000, "tire_fl_kpa"),
        alert_id(VIN, "tire_puncture", 1001, "tire_fl_kpa"),
        alert_id(VIN, "tire_puncture", 1000, "tire_fr_kpa"),
        alert_id(VIN, "tire_puncture", 1000),
    }
    assert base not in others and len(others) == 5


def test_alert_id_is_pinned():
    # A new namespace or name layout would give every open episode a new id after a deploy: the
    # alerts already written would no longer deduplicate with their replays.
    assert alert_id(VIN, "coolant_temp", 1_795_000_433_000) == "4f5aa0f442235928a6c141ad406a6f8b"
    assert (
        alert_id(VIN, "tire_puncture", 1_795_000_433_000, "tire_fl_kpa") == "1b0a69a9b700585cb44113f5c0b38eb8"
    )
    assert alert_id(VIN, "coolant_temp", 1_795_000_433_000, "") == alert_id(
        VIN, "coolant_temp", 1_795_000_433_000
    )


def test_to_json_is_compact_with_fields_in_declaration_order():
    alert = make()
    data = alert.to_json()
    assert data == json.dumps(alert.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()
    assert b'"value":112.4,"threshold":110.0' in data  # no padding between fields
    assert list(json.loads(data)) == [
        "alert_id",
        "vin",
        "rule",
        "subsystem",
        "severity",
        "status",
        "value",
        "threshold",
        "started_at",
        "ts",
        "detected_at",
        "message",
        "signal",
    ]


@pytest.mark.parametrize("value", [112.4, "P0217", None, 3])
def test_json_round_trip(value):
    alert = make(value=value, signal="P0217" if isinstance(value, str) else "")
    assert Alert.from_json(alert.to_json()) == alert
    assert Alert.from_json(alert.to_json().decode()) == alert


def test_from_json_accepts_a_record_without_signal():
    doc = make().to_dict()
    del doc["signal"]
    assert Alert.from_json(json.dumps(doc)).signal == ""


@pytest.mark.parametrize(
    ("field", "bad", "needle"),
    [
        ("severity", "fatal", "severity"),
        ("status", "opened", "status"),
        ("started_at", "yesterday", "started_at"),
        ("ts", True, "ts"),
        ("vin", 42, "vin"),
        ("value", [1], "value"),
        ("threshold", "110", "threshold"),
        ("signal", 7, "signal"),
    ],
)
def test_from_json_names_the_bad_field(field, bad, needle):
    doc = make().to_dict() | {field: bad}
    with pytest.raises(ValueError, match=needle):
        Alert.from_json(json.dumps(doc))


def test_from_json_rejects_unknown_fields_and_non_objects():
    with pytest.raises(ValueError, match="unknown field"):
        Alert.from_json(json.dumps(make().to_dict() | {"colour": "red"}))
    with pytest.raises(ValueError, match="object"):
        Alert.from_json(b"[1, 2]")


def test_closed_sets():
    assert SEVERITIES == ("info", "warning", "critical")
    assert STATUSES == ("raised", "escalated", "cleared")
