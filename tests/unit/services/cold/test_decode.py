"""Record values -> typed Arrow columns; what cannot be typed is a reject, never lost."""

import json

import pyarrow as pa

from schemas.arrow import SCHEMAS
from services.cold.decode import FILE_SCHEMAS, Lines, decode_values
from services.hot.alerts import Alert, alert_id
from tests.unit.services.cold.support import frames


def test_valid_frames_decode_to_the_catalog_types_in_order():
    items = frames("engine", 50)
    table, kept, rejects = decode_values("engine", [p for _, _, p in items])
    assert kept == list(range(50)) and rejects == []
    assert table.column_names == SCHEMAS["engine"].names
    assert table.column("vin").to_pylist() == [vin for vin, _, _ in items]
    assert table.column("ts").to_pylist() == [ts for _, ts, _ in items]
    for field in SCHEMAS["engine"]:
        if field.name != "ts":
            assert table.schema.field(field.name).type == field.type


def test_every_subsystem_decodes_including_lists_and_bools():
    for sub in SCHEMAS:
        items = frames(sub, 20)
        table, kept, rejects = decode_values(sub, [p for _, _, p in items])
        assert len(kept) == 20 and not rejects, sub
        expected = [json.loads(p) for _, _, p in items]
        assert [r["seq"] for r in table.to_pylist()] == [e["seq"] for e in expected]


def test_bad_values_are_rejects_and_the_rest_keep_their_positions():
    items = [p for _, _, p in frames("chassis", 40)]
    bad = {
        3: b"not json",
        17: b'{"vin":"X","ts":1}',
        18: b"",
        25: b'{"vin":null,"ts":1795000000000,"seq":1,"schema_version":1}',
        39: b'{"vin":"A","ts":1,"seq":1,"schema_version":1,"nope":2}',
    }
    values = [bad.get(i, p) for i, p in enumerate(items)]
    table, kept, rejects = decode_values("chassis", values)
    assert kept == [i for i in range(40) if i not in bad]
    assert [i for i, _ in rejects] == sorted(bad)
    assert all(reason for _, reason in rejects)
    assert table.num_rows == 35
    assert table.column("seq").to_pylist() == [json.loads(items[i])["seq"] for i in kept]


def test_lines_decode_as_the_list_of_their_values_do():
    items = [p for _, _, p in frames("chassis", 30)]
    pretty = json.dumps(json.loads(items[5]), indent=2).encode()  # a value spanning lines
    values = [*items[:5], pretty, b"not json", b"", *items[6:]]
    lines = Lines.of(values)
    assert list(lines) == values and lines[5] == pretty and lines[2:4] == values[2:4]
    assert lines.span(6, 8) == b"not json\n\n"
    from_lines, from_list = decode_values("chassis", lines), decode_values("chassis", values)
    assert from_lines[0].equals(from_list[0]) and from_lines[1:] == from_list[1:]
    assert [i for i, _ in from_lines[2]] == [6, 7] and len(from_lines[1]) == 30


def test_values_the_reference_validator_accepts_are_kept():
    ((vin, ts, payload),) = frames("engine", 1)
    doc = json.loads(payload)
    pretty = json.dumps(doc, indent=2).encode()  # newlines between tokens
    as_float_version = payload.replace(b'"schema_version":1', b'"schema_version":1.0')
    duplicate_key = payload[:-1] + b',"engine_rpm":1234.5}'
    table, kept, rejects = decode_values("engine", [pretty, as_float_version, duplicate_key])
    assert rejects == [] and kept == [0, 1, 2]
    assert table.column("schema_version").to_pylist() == [1, 1, 1]
    assert table.column("engine_rpm").to_pylist()[2] == 1234.5
    assert table.column("vin").to_pylist() == [vin] * 3


def test_an_int_sent_for_a_float_signal_is_a_float():
    ((_, _, payload),) = frames("engine", 1)
    doc = json.loads(payload)
    doc["engine_rpm"] = 3000
    table, kept, _ = decode_values("engine", [json.dumps(doc).encode()])
    assert kept == [0] and table.column("engine_rpm").to_pylist() == [3000.0]


def _alert(**over):
    fields = dict(
        alert_id=alert_id("1FLEET00000000042", "coolant_temp", 1_795_000_433_000),
        vin="1FLEET00000000042", rule="coolant_temp", subsystem="engine", severity="warning",
        status="raised", value=112.4, threshold=110.0, started_at=1_795_000_433_000,
        ts=1_795_000_463_000, detected_at=1_795_000_463_120, message="hot",
    )  # fmt: skip
    fields.update(over)
    return Alert(**fields)


def test_alerts_decode_with_value_as_string_and_timestamps():
    values = [
        _alert().to_json(),
        _alert(value="P0217", threshold=None, rule="dtc_new", signal="P0217").to_json(),
        _alert(value=3).to_json(),
        b'{"alert_id":"x"}',
    ]
    table, kept, rejects = decode_values("alerts", values)
    assert kept == [0, 1, 2] and [i for i, _ in rejects] == [3]
    assert table.column("value").to_pylist() == ["112.4", "P0217", "3"]
    assert table.column("threshold").to_pylist() == [110.0, None, 110.0]
    assert table.column("signal").to_pylist() == ["", "P0217", ""]
    full = [f.name for f in FILE_SCHEMAS["alerts"]]
    assert table.column_names == full[: len(table.column_names)]
    assert FILE_SCHEMAS["alerts"].field("started_at").type == pa.timestamp("ms", tz="UTC")


def test_a_ts_without_a_calendar_date_is_a_reject_not_a_crash():
    items = [p for _, _, p in frames("engine", 4)]
    far = json.loads(items[1])
    far["ts"] = 10**15  # year ~33,658
    negative = json.loads(items[2])
    negative["ts"] = -5
    values = [items[0], json.dumps(far).encode(), json.dumps(negative).encode(), items[3]]
    table, kept, rejects = decode_values("engine", values)
    assert kept == [0, 3] and table.num_rows == 2
    assert [i for i, _ in rejects] == [1, 2] and all("out_of_range" in r for _, r in rejects)
