"""The alert record the hot path writes to `alerts.health` (key: VIN), and its episode identity.

    alert = Alert(
        alert_id=alert_id("1FLEET00000000042", "coolant_temp", 1795000433000),
        vin="1FLEET00000000042", rule="coolant_temp", subsystem="engine",
        severity="warning", status="raised", value=112.4, threshold=110.0,
        started_at=1795000433000, ts=1795000463000, detected_at=1795000463120,
        message="coolant temperature 112.4 °C above 110 °C",
    )
    alert.to_json()                      # b'{"alert_id":"…","vin":"1FLEET…",…}'
    Alert.from_json(alert.to_json()) == alert

An *episode* is one stretch during which a rule's condition holds for one car (and one signal,
for rules that watch several: a tire, a trouble code). Every record of an episode (`raised`,
then at most one `escalated`, then `cleared`) carries the same `alert_id`, derived from
(vin, rule, signal, started_at) alone: recomputing an episode after a restart or a redelivery
gives the same id, so a consumer keeping the first record per (alert_id, status) sees exactly one
`raised` per episode even when the hot path (at-least-once) writes one twice.

Clocks: `started_at` and `ts` are vehicle time (the frames' `ts`, epoch ms); `detected_at` is
the wall clock of the worker that decided (epoch ms), passed in by the caller.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from typing import Any, Literal, get_args

Severity = Literal["info", "warning", "critical"]
Status = Literal["raised", "escalated", "cleared"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
STATUSES: tuple[Status, ...] = get_args(Status)

# uuid5 namespace of fleet-pipeline alert ids: fixed forever, or every id changes.
_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://fleet-pipeline/alerts.health")


def alert_id(vin: str, rule: str, started_at: int, signal: str = "") -> str:
    """The episode's id: uuid5 hex of (vin, rule, signal, started_at); same inputs, same id.

    `signal` names what a multi-signal rule watched ("tire_rl_kpa", "P0217"); without it two tires
    going flat in the same frame would share one id.
    """
    name = f"{vin}/{rule}/{signal}/{started_at}" if signal else f"{vin}/{rule}/{started_at}"
    return uuid.uuid5(_NAMESPACE, name).hex


@dataclasses.dataclass(frozen=True, slots=True)
class Alert:
    """One record on `alerts.health`."""

    alert_id: str  # episode identity, see `alert_id()`
    vin: str
    rule: str  # "coolant_temp", "tire_puncture", ... (the labels file's `rule`)
    subsystem: str  # the subsystem whose frames the rule reads
    severity: Severity
    status: Status
    value: float | str | None  # the reading that decided (a trouble code for dtc_new)
    threshold: float | None  # the level it was compared with (the clear level on `cleared`)
    started_at: int  # vehicle time the episode's condition first held (epoch ms)
    ts: int  # vehicle time of the frame that produced this record (epoch ms)
    detected_at: int  # wall clock when the hot path decided (epoch ms)
    message: str
    signal: str = ""  # the signal or code a multi-signal rule watched, else ""

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON, fields in declaration order (the Kafka record value)."""
        return json.dumps(self.to_dict(), separators=(",", ":"), ensure_ascii=False).encode()

    def to_dict(self) -> dict[str, Any]:
        """The record as a plain dict."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_json(cls, data: bytes | str) -> Alert:
        """Parse a record written by `to_json`; ValueError names the first bad field."""
        doc = json.loads(data)
        if not isinstance(doc, dict):
            raise ValueError("alert record: expected a JSON object")
        return cls.from_dict(doc)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> Alert:
        """Build from a plain dict, checking every field's type."""
        unknown = set(doc) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"alert record: unknown field(s) {', '.join(sorted(unknown))}")
        for name in ("alert_id", "vin", "rule", "subsystem", "message"):
            if not isinstance(doc.get(name), str):
                raise ValueError(f"alert record: {name} must be a string")
        for name in ("started_at", "ts", "detected_at"):
            if not _is_int(doc.get(name)):
                raise ValueError(f"alert record: {name} must be an integer (epoch ms)")
        severity, status = doc.get("severity"), doc.get("status")
        if severity not in SEVERITIES:
            raise ValueError(f"alert record: severity {severity!r} is not one of {', '.join(SEVERITIES)}")
        if status not in STATUSES:
            raise ValueError(f"alert record: status {status!r} is not one of {', '.join(STATUSES)}")
        value, threshold = doc.get("value"), doc.get("threshold")
        if value is not None and not isinstance(value, str) and not _is_number(value):
            raise ValueError("alert record: value must be a number, a string or null")
        if threshold is not None and not _is_number(threshold):
            raise ValueError("alert record: threshold must be a number or null")
        signal = doc.get("signal", "")
        if not isinstance(signal, str):
            raise ValueError("alert record: signal must be a string")
        return cls(
            alert_id=doc["alert_id"],
            vin=doc["vin"],
            rule=doc["rule"],
            subsystem=doc["subsystem"],
            severity=severity,
            status=status,
            value=value,
            threshold=threshold,
            started_at=doc["started_at"],
            ts=doc["ts"],
            detected_at=doc["detected_at"],
            message=doc["message"],
            signal=signal,
        )


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: object) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)
