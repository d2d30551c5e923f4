"""Malformed MQTT messages, one generator per kind, each with the reason the bridge must give.

`--bad-rate` mixes these into a simulation; the bridge's dead-letter tests use `CORPUS`
directly. Every entry maps a car's valid frame to (topic, payload, expected reason code).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

from schemas.validate import MAX_FRAME_BYTES, Reason

BadMaker = Callable[[str, str, dict[str, Any], random.Random], tuple[str, bytes]]


def _dump(frame: Any) -> bytes:
    return json.dumps(frame, separators=(",", ":")).encode()


def _with(frame: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**frame, **changes}


def _without(frame: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in frame.items() if k != key}


def _first_float(frame: dict[str, Any]) -> str:
    return next(k for k, v in frame.items() if type(v) is float)


# name -> (maker(vin, subsystem, valid_frame, rng) -> (topic, payload), expected reason)
CORPUS: dict[str, tuple[BadMaker, Reason]] = {
    "truncated_json": (lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(f)[: len(_dump(f)) // 2]), "parse_error"),
    "trailing_garbage": (lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(f) + b"}}"), "parse_error"),
    "single_quotes": (lambda v, s, f, r: (f"fleet/{v}/{s}", str(f).encode()), "parse_error"),
    "empty_payload": (lambda v, s, f, r: (f"fleet/{v}/{s}", b""), "parse_error"),
    "binary_garbage": (lambda v, s, f, r: (f"fleet/{v}/{s}", r.randbytes(64)), "parse_error"),
    "invalid_utf8": (lambda v, s, f, r: (f"fleet/{v}/{s}", b'{"vin": "\xff\xfe"}'), "parse_error"),
    "nan_literal": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(f).replace(b"{", b'{"x":NaN,', 1)),
        "schema_violation",
    ),
    "json_array": (lambda v, s, f, r: (f"fleet/{v}/{s}", _dump([f])), "schema_violation"),
    "json_string": (lambda v, s, f, r: (f"fleet/{v}/{s}", b'"hello"'), "schema_violation"),
    "json_null": (lambda v, s, f, r: (f"fleet/{v}/{s}", b"null"), "schema_violation"),
    "missing_vin": (lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_without(f, "vin"))), "schema_violation"),
    "missing_ts": (lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_without(f, "ts"))), "schema_violation"),
    "missing_seq": (lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_without(f, "seq"))), "schema_violation"),
    "ts_as_string": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, ts=str(f["ts"])))),
        "schema_violation",
    ),
    "ts_as_float": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, ts=f["ts"] + 0.5))),
        "schema_violation",
    ),
    "negative_seq": (lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, seq=-1))), "schema_violation"),
    "wrong_schema_version": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, schema_version=99))),
        "schema_violation",
    ),
    "signal_as_string": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, **{_first_float(f): "12.5"}))),
        "schema_violation",
    ),
    "signal_as_bool": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, **{_first_float(f): True}))),
        "schema_violation",
    ),
    "signal_as_object": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, **{_first_float(f): {"v": 1}}))),
        "schema_violation",
    ),
    "unknown_signal": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, warp_drive=1.0))),
        "schema_violation",
    ),
    "vin_not_string": (lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, vin=12345))), "schema_violation"),
    "out_of_range_high": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, **{_first_float(f): 1e9}))),
        "out_of_range",
    ),
    "out_of_range_low": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, **{_first_float(f): -1e9}))),
        "out_of_range",
    ),
    "enum_not_allowed": (
        lambda v, s, f, r: (f"fleet/{v}/electronics", _dump(_with(_electronics(f), ignition="WARP"))),
        "out_of_range",
    ),
    "vin_mismatch": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, vin="1FLEET99999999999"))),
        "vin_mismatch",
    ),
    "ts_before_2000": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, ts=86_400_000))),
        "bad_timestamp",
    ),
    "ts_far_future": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, ts=f["ts"] + 400 * 24 * 3600 * 1000))),
        "bad_timestamp",
    ),
    "oversize": (
        lambda v, s, f, r: (f"fleet/{v}/{s}", _dump(_with(f, pad="x" * (MAX_FRAME_BYTES + 1)))),
        "oversize",
    ),
    "unknown_subsystem": (lambda v, s, f, r: (f"fleet/{v}/hyperdrive", _dump(f)), "unknown_subsystem"),
    "topic_too_short": (lambda v, s, f, r: (f"fleet/{v}", _dump(f)), "bad_topic"),
    "topic_too_long": (lambda v, s, f, r: (f"fleet/{v}/{s}/extra", _dump(f)), "bad_topic"),
    "topic_wrong_root": (lambda v, s, f, r: (f"cars/{v}/{s}", _dump(f)), "bad_topic"),
    "vin_too_short": (lambda v, s, f, r: (f"fleet/{v[:10]}/{s}", _dump(_with(f, vin=v[:10]))), "bad_vin"),
    "vin_with_letter_o": (
        lambda v, s, f, r: (f"fleet/{v[:-1]}O/{s}", _dump(_with(f, vin=v[:-1] + "O"))),
        "bad_vin",
    ),
    "vin_lowercase": (
        lambda v, s, f, r: (f"fleet/{v.lower()}/{s}", _dump(_with(f, vin=v.lower()))),
        "bad_vin",
    ),
}


def _electronics(frame: dict[str, Any]) -> dict[str, Any]:
    """The envelope of `frame` as an electronics frame (for the enum case)."""
    return {k: frame[k] for k in ("vin", "ts", "seq", "schema_version")}


BAD_KINDS: tuple[str, ...] = tuple(CORPUS)


def make_bad(
    kind: str, vin: str, subsystem: str, frame: dict[str, Any], rng: random.Random
) -> tuple[str, bytes, Reason]:
    """One malformed message of `kind` derived from a valid frame."""
    maker, reason = CORPUS[kind]
    topic, payload = maker(vin, subsystem, frame, rng)
    return topic, payload, reason
