"""Frame validation derived from the catalog: the checks every consumer of frames agrees on.

    result = validate_message("fleet/1FLEET00000000042/engine", payload_bytes)
    if isinstance(result, Invalid):
        result.reason   # "out_of_range"
        result.detail   # "coolant_temp_c=212.0 outside -40..150"
    else:
        result.frame    # {"vin": ..., "ts": ..., "seq": ..., "coolant_temp_c": 91.2, ...}

Reason codes are a closed set (`Reason`); the bridge puts them on dead-letter records. Checks
run cheapest first and stop at the first failure. Missing signals are allowed (a car may lack
a sensor; the lake stores null); unknown ones are not.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping
from typing import Any, Literal, get_args

from schemas.catalog import BY_SUBSYSTEM, ENVELOPE, SCHEMA_VERSION, SUBSYSTEMS, Signal

Reason = Literal[
    "oversize",
    "bad_topic",
    "unknown_subsystem",
    "bad_vin",
    "parse_error",
    "schema_violation",
    "out_of_range",
    "vin_mismatch",
    "bad_timestamp",
]
REASONS: tuple[Reason, ...] = get_args(Reason)

MAX_FRAME_BYTES = 16 * 1024  # a full frame is ~1 KB; 16x leaves room, bounds memory per message
TS_MIN_MS = 946_684_800_000  # 2000-01-01T00:00:00Z: older is a broken clock, not history
TS_MAX_FUTURE_MS = 7 * 24 * 3600 * 1000  # simulated fleets run ahead of the wall clock (--speedup)
VIN_RE = re.compile(r"[A-HJ-NPR-Z0-9]{17}")  # ISO 3779: 17 characters, no I, O or Q


@dataclasses.dataclass(frozen=True, slots=True)
class Valid:
    """A frame that passed every check."""

    vin: str
    subsystem: str
    frame: dict[str, Any]


@dataclasses.dataclass(frozen=True, slots=True)
class Invalid:
    """Why a message was refused: a reason code and one line of detail."""

    reason: Reason
    detail: str


def _check_float(v: Any) -> bool:
    return (type(v) is float or type(v) is int) and v == v  # excludes bool and NaN


def _check_int(v: Any) -> bool:
    return type(v) is int


def _check_bool(v: Any) -> bool:
    return type(v) is bool


def _check_str(v: Any) -> bool:
    return type(v) is str


def _check_str_list(v: Any) -> bool:
    return type(v) is list and all(type(x) is str for x in v)


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "float": _check_float,
    "int": _check_int,
    "bool": _check_bool,
    "string": _check_str,
    "string[]": _check_str_list,
}


@dataclasses.dataclass(frozen=True, slots=True)
class _Rule:
    signal: Signal
    check: Callable[[Any], bool]
    lo: float | None
    hi: float | None
    allowed: frozenset[str]


# {"engine": {"coolant_temp_c": _Rule(...), ...}, ...}: built once from the catalog.
_RULES: Mapping[str, Mapping[str, _Rule]] = {
    sub: {
        s.name: _Rule(s, _TYPE_CHECKS[s.type], s.min, s.max, frozenset(s.allowed)) for s in BY_SUBSYSTEM[sub]
    }
    for sub in SUBSYSTEMS
}


def parse_topic(topic: str) -> tuple[str, str] | Invalid:
    """`fleet/<vin>/<subsystem>` -> (vin, subsystem), or why not."""
    parts = topic.split("/")
    if len(parts) != 3 or parts[0] != "fleet":
        return Invalid("bad_topic", f"topic {topic[:200]!r} is not fleet/<vin>/<subsystem>")
    _, vin, subsystem = parts
    if not VIN_RE.fullmatch(vin):
        return Invalid(
            "bad_vin", f"VIN {vin[:40]!r} in the topic is not 17 characters of A-Z/0-9 without I, O, Q"
        )
    if subsystem not in _RULES:
        return Invalid(
            "unknown_subsystem", f"subsystem {subsystem[:40]!r} is not one of {', '.join(SUBSYSTEMS)}"
        )
    return vin, subsystem


def validate_frame(subsystem: str, frame: Any, now_ms: int | None = None) -> Invalid | None:
    """Check a decoded frame against the catalog; None when it is valid."""
    if type(frame) is not dict:
        return Invalid("schema_violation", f"frame is a JSON {type(frame).__name__}, expected an object")
    for key in ENVELOPE:
        if key not in frame:
            return Invalid("schema_violation", f"missing {key!r}")
    if type(frame["vin"]) is not str:
        return Invalid("schema_violation", "vin is not a string")
    ts, seq, version = frame["ts"], frame["seq"], frame["schema_version"]
    if type(ts) is not int:
        return Invalid("schema_violation", f"ts={ts!r} is not an integer (epoch ms)")
    if type(seq) is not int or seq < 0:
        return Invalid("schema_violation", f"seq={seq!r} is not a non-negative integer")
    if type(version) is not int or version != SCHEMA_VERSION:  # 1.0 and true equal 1 in Python
        return Invalid(
            "schema_violation", f"schema_version={version!r}, this pipeline reads {SCHEMA_VERSION}"
        )
    if ts < TS_MIN_MS or (now_ms is not None and ts > now_ms + TS_MAX_FUTURE_MS):
        return Invalid("bad_timestamp", f"ts={ts} is before 2000 or more than 7 days ahead")
    rules = _RULES[subsystem]
    for name, value in frame.items():
        rule = rules.get(name)
        if rule is None:
            if name in ENVELOPE:
                continue
            return Invalid("schema_violation", f"unknown signal {name[:60]!r} for {subsystem}")
        if value is None:
            continue  # sensor unavailable this tick
        if not rule.check(value):
            return Invalid("schema_violation", f"{name}={str(value)[:60]!r} is not {rule.signal.type}")
        if rule.lo is not None and rule.hi is not None and not rule.lo <= value <= rule.hi:
            return Invalid("out_of_range", f"{name}={value} outside {rule.lo:g}..{rule.hi:g}")
        if rule.allowed and value not in rule.allowed:
            return Invalid(
                "out_of_range", f"{name}={str(value)[:40]!r} not one of {', '.join(sorted(rule.allowed))}"
            )
    return None


def validate_message(
    topic: str, payload: bytes, now_ms: int | None = None, max_bytes: int = MAX_FRAME_BYTES
) -> Valid | Invalid:
    """Every check, cheapest first: size, topic, JSON, schema, ranges, VIN agreement, time."""
    if len(payload) > max_bytes:
        return Invalid("oversize", f"{len(payload)} bytes > limit {max_bytes}")
    where = parse_topic(topic)
    if isinstance(where, Invalid):
        return where
    vin, subsystem = where
    try:
        frame = json.loads(payload)
    except (UnicodeDecodeError, ValueError) as exc:
        return Invalid("parse_error", f"not UTF-8 JSON: {str(exc)[:120]}")
    except RecursionError:  # ~1000-deep nesting fits in 2 KB; json.loads gives up on the stack
        return Invalid("parse_error", "JSON nested too deeply")
    problem = validate_frame(subsystem, frame, now_ms)
    if problem is not None:
        return problem
    if frame["vin"] != vin:
        return Invalid("vin_mismatch", f"payload vin {frame['vin'][:40]!r} != topic vin {vin!r}")
    return Valid(vin, subsystem, frame)
