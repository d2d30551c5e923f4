"""The alert board behind `fleet alerts`: episodes open and close, redeliveries show once, filters."""

from __future__ import annotations

import pytest

from services.common.errors import ConfigError
from services.hot.alerts import Alert, alert_id
from services.hot.watch import (
    AlertBoard,
    AlertFilter,
    AlertsSettings,
    event_line,
    event_row,
    open_row,
    parse_record,
    utc_time,
    value_vs_threshold,
)

VIN_A = "1FLEET00000000042"
VIN_B = "1FLEET00000000043"
T0 = 1_795_000_433_000  # 2026-11-18 11:13:53 UTC


def alert(
    vin=VIN_A, rule="coolant_temp", started_at=T0, status="raised", severity="warning", **fields
) -> Alert:
    signal = fields.pop("signal", "")
    values = {
        "alert_id": alert_id(vin, rule, started_at, signal),
        "vin": vin,
        "rule": rule,
        "subsystem": "engine",
        "severity": severity,
        "status": status,
        "value": 112.4,
        "threshold": 110.0,
        "started_at": started_at,
        "ts": started_at + 30_000,
        "detected_at": started_at + 30_120,
        "message": "coolant temperature 112.4 °C above 110 °C",
        "signal": signal,
    }
    return Alert(**(values | fields))


def test_raise_opens_escalate_updates_clear_closes():
    board = AlertBoard()
    assert board.apply(alert()) == "shown"
    assert [a.severity for a in board.open_alerts()] == ["warning"]

    assert board.apply(alert(status="escalated", severity="critical", value=125.0)) == "shown"
    (only,) = board.open_alerts()
    assert (only.status, only.severity, only.value) == ("escalated", "critical", 125.0)

    assert board.apply(alert(status="cleared", severity="critical", threshold=105.0)) == "shown"
    assert board.open_alerts() == []
    assert [a.status for a in board.recent] == ["raised", "escalated", "cleared"]


def test_an_escalation_without_its_raise_opens_the_episode():
    # A tail that starts mid-episode sees the escalation first.
    board = AlertBoard()
    assert board.apply(alert(status="escalated", severity="critical")) == "shown"
    assert len(board.open_alerts()) == 1


def test_a_clear_of_an_unknown_episode_is_an_event_but_opens_nothing():
    board = AlertBoard()
    assert board.apply(alert(status="cleared")) == "shown"
    assert board.open_alerts() == [] and len(board.recent) == 1


def test_redelivered_records_show_once():
    board = AlertBoard()
    raised, cleared = alert(), alert(status="cleared")
    # the hot path re-sends a record after a restart; detected_at differs, the identity does not
    outcomes = [
        board.apply(raised),
        board.apply(alert(detected_at=T0 + 99_999)),
        board.apply(cleared),
        board.apply(cleared),
    ]
    assert outcomes == ["shown", "duplicate", "shown", "duplicate"]
    assert board.counts["shown"] == 2 and board.counts["duplicate"] == 2
    assert len(board.recent) == 2


def test_a_replay_behind_the_episode_never_reopens_or_downgrades_it():
    board = AlertBoard()
    board.apply(alert(status="escalated", severity="critical"))
    assert board.apply(alert(status="raised", severity="warning")) == "stale"
    assert board.open_alerts()[0].severity == "critical"

    board.apply(alert(status="cleared", severity="critical"))
    assert board.apply(alert(status="raised")) == "stale"
    assert board.apply(alert(status="escalated", severity="critical")) == "stale"
    assert board.open_alerts() == []


def test_a_new_episode_of_the_same_car_and_rule_is_a_new_alert():
    board = AlertBoard()
    board.apply(alert())
    board.apply(alert(status="cleared"))
    assert board.apply(alert(started_at=T0 + 600_000)) == "shown"
    assert len(board.open_alerts()) == 1


def test_closed_episode_memory_is_bounded():
    board = AlertBoard(max_closed=2)
    for n in range(3):
        board.apply(alert(started_at=T0 + n, status="cleared"))
    # the oldest clear was forgotten: its replay is seen as new, the two newer still dedupe
    assert board.apply(alert(started_at=T0 + 2, status="cleared")) == "duplicate"
    assert board.apply(alert(started_at=T0 + 1, status="cleared")) == "duplicate"
    assert board.apply(alert(started_at=T0 + 0, status="cleared")) == "shown"


@pytest.mark.parametrize(
    ("wanted", "expected"),
    [
        (AlertFilter(), {"info", "warning", "critical"}),
        (AlertFilter(min_severity="warning"), {"warning", "critical"}),
        (AlertFilter(min_severity="critical"), {"critical"}),
    ],
)
def test_minimum_severity(wanted, expected):
    board = AlertBoard(wanted)
    for n, severity in enumerate(("info", "warning", "critical")):
        board.apply(alert(started_at=T0 + n, severity=severity))
    assert {a.severity for a in board.open_alerts()} == expected
    assert board.counts["filtered"] == 3 - len(expected)


def test_vin_and_rule_filters():
    board = AlertBoard(AlertFilter(vins=frozenset({VIN_B}), rules=frozenset({"oil_pressure", "dtc_new"})))
    outcomes = [
        board.apply(alert(vin=VIN_A, rule="oil_pressure")),
        board.apply(alert(vin=VIN_B, rule="coolant_temp")),
        board.apply(alert(vin=VIN_B, rule="oil_pressure")),
        board.apply(alert(vin=VIN_B, rule="dtc_new", signal="P0217", value="P0217", threshold=None)),
    ]
    assert outcomes == ["filtered", "filtered", "shown", "shown"]
    assert {(a.vin, a.rule) for a in board.open_alerts()} == {(VIN_B, "oil_pressure"), (VIN_B, "dtc_new")}


def test_an_episode_on_the_board_keeps_its_records_whatever_the_severity_filter():
    board = AlertBoard(AlertFilter(min_severity="critical"))
    assert board.apply(alert(status="raised", severity="warning")) == "filtered"
    assert board.apply(alert(status="escalated", severity="critical")) == "shown"
    # a clear at a lower severity than the filter must still close what the board shows
    assert board.apply(alert(status="cleared", severity="warning")) == "shown"
    assert board.open_alerts() == []


def test_open_rows_critical_first_then_oldest():
    board = AlertBoard()
    board.apply(alert(vin="V-warn-old", started_at=T0, severity="warning"))
    board.apply(alert(vin="V-crit-new", started_at=T0 + 60_000, severity="critical"))
    board.apply(alert(vin="V-info-old", started_at=T0 - 60_000, severity="info"))
    board.apply(alert(vin="V-crit-old", started_at=T0 + 1_000, severity="critical"))
    board.apply(alert(vin="V-warn-new", started_at=T0 + 90_000, severity="warning"))
    assert [a.vin for a in board.open_alerts()] == [
        "V-crit-old",
        "V-crit-new",
        "V-warn-old",
        "V-warn-new",
        "V-info-old",
    ]


def test_row_rendering():
    raised = alert(signal="")
    assert open_row(raised) == (
        VIN_A,
        "coolant_temp",
        "-",
        "warning",
        "2026-11-18 11:13:53",
        "112.4 / 110",
        "coolant temperature 112.4 °C above 110 °C",
    )
    assert event_row(raised) == (
        "2026-11-18 11:14:23",
        "raised",
        VIN_A,
        "coolant_temp",
        "-",
        "warning",
    )
    dtc = alert(rule="dtc_new", signal="P0217", value="P0217", threshold=None, message="new code\nP0217")
    assert value_vs_threshold(dtc) == "P0217"
    assert value_vs_threshold(alert(value=None, threshold=None)) == "-"
    line = event_line(dtc)
    assert line.startswith(
        "2026-11-18 11:14:23Z raised    warning  1FLEET00000000042 dtc_new signal=P0217 P0217"
    )
    assert "\n" not in line


def test_utc_time_survives_absurd_clocks():
    assert utc_time(0) == "1970-01-01 00:00:00"
    assert utc_time(10**20) == str(10**20)


def test_recent_events_are_bounded_newest_last():
    board = AlertBoard(events=3)
    for n in range(5):
        board.apply(alert(started_at=T0 + n))
    assert [a.started_at for a in board.recent] == [T0 + 2, T0 + 3, T0 + 4]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "tombstone"),
        (b"not json", "Expecting value"),
        (b"[1, 2]", "expected a JSON object"),
        (b'{"alert_id": "x"}', "vin must be a string"),
        (b"\xff\xfe\x00", "codec can.t decode"),
        (b"[" * 100_000, "nested too deeply"),
    ],
)
def test_parse_record_rejects_what_is_not_an_alert(value, reason):
    with pytest.raises(ValueError, match=reason):
        parse_record(value)


def test_parse_record_round_trips():
    raised = alert()
    assert parse_record(raised.to_json()) == raised


def test_settings_default_topic_and_empty_topic_is_refused():
    assert AlertsSettings.from_env({}).topic == "alerts.health"
    assert AlertsSettings.from_env({"FLEET_ALERTS_TOPIC": "a.b"}).topic == "a.b"
    with pytest.raises(ConfigError, match="FLEET_ALERTS_TOPIC is empty"):
        AlertsSettings.from_env({"FLEET_ALERTS_TOPIC": " "})
