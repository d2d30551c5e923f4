"""The bridge's frame validator: `schemas.validate` semantics with the accept path in C.

    validator = FrameValidator()
    result = validator.check("fleet/1FLEET00000000042/engine", payload_bytes, now_ms)
    # the same Valid / Invalid as schemas.validate.validate_message(topic, payload, now_ms)

Why: the reference validator (`json.loads` into dicts, then one Python check per key) costs
~12 us a frame, and the bridge has to move >= 10,000 frames/s in one process beside paho and
aiokafka. Almost every frame is valid, so only accepting has to be fast.

Design:

- Fast accept path. From the catalog (never a hand-written field list) this module builds one
  `msgspec.Struct` per subsystem: the envelope fields required, every signal optional, types,
  ranges (`msgspec.Meta(ge=, le=)`) and allowed values (`Literal`) as the reference checks them,
  unknown keys forbidden. A `msgspec.json.Decoder` per subsystem parses and checks a frame in
  one pass in C. What a Struct cannot say (ts not too far past `now_ms`, payload vin equals
  topic vin) is checked after decoding. Topics are parsed by the reference `parse_topic` once
  and remembered in a bounded dict.
- Reference fallback. Whenever msgspec refuses a payload, or a post-decode check fails, or the
  topic or size is wrong, the answer comes from `schemas.validate.validate_message` itself. So
  every `Invalid` is the reference's, reason and detail alike, and msgspec being *stricter*
  than the reference anywhere only costs time, never a verdict. Examples of stricter: a UTF-8
  BOM, UTF-16/32 payloads, UTF-8-encoded or escaped lone surrogates, duplicate keys whose
  earlier value is bad, schema_version 1.0 or true (all accepted by the reference); these are
  valid and go the slow way.
- What must hold is the converse: msgspec accepts only what the reference accepts. The
  `_field_type` comments say how each catalog rule maps; the differential fuzzer in
  tests/unit/schemas/test_fastvalidate.py checks the pair on every kind of bad input we know.

`Valid.frame` on the fast path is the decoded Struct turned back into a dict (`to_builtins`):
equal to the reference's frame, same keys (signals absent from the payload are absent, explicit
nulls are None) and same value types (a float signal sent as `3` stays the int 3); only the key
order differs (catalog order instead of payload order). It costs ~0.8 us of the ~2.7 us; the
bridge forwards the payload bytes and could do without it, but a `Valid` that means the same
thing whichever validator produced it is worth that.

Known reference defect, inherited through the fallback: a payload nested ~1000 deep (2 KB)
makes `json.loads` raise RecursionError, which `validate_message` does not catch; so does
`check` (see the xfail test in tests/unit/schemas/test_fastvalidate.py).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal

import msgspec

from schemas.catalog import BY_SUBSYSTEM, ENVELOPE, SCHEMA_VERSION, SUBSYSTEMS, Signal
from schemas.validate import (
    MAX_FRAME_BYTES,
    TS_MAX_FUTURE_MS,
    TS_MIN_MS,
    Invalid,
    Valid,
    parse_topic,
    validate_message,
)

# The envelope rules of `validate_frame`, which the catalog names (ENVELOPE) but does not type.
# ts >= TS_MIN_MS is a Struct constraint; its upper bound depends on now_ms, so it is checked
# after decoding. schema_version is exactly the int SCHEMA_VERSION here; the reference also
# takes anything `== SCHEMA_VERSION` (1.0, true), which msgspec refuses and the fallback accepts.
_ENVELOPE_TYPES: Final[Mapping[str, Any]] = {
    "vin": str,
    "ts": Annotated[int, msgspec.Meta(ge=TS_MIN_MS)],
    "seq": Annotated[int, msgspec.Meta(ge=0)],
    "schema_version": Literal.__getitem__(SCHEMA_VERSION),
}
if tuple(_ENVELOPE_TYPES) != ENVELOPE:
    raise RuntimeError(f"fastvalidate types envelope {tuple(_ENVELOPE_TYPES)}, the catalog has {ENVELOPE}")


class CatalogNotSupported(ValueError):
    """A catalog signal the fast path cannot check exactly as the reference does."""


def _exact_float(bound: float, signal: Signal) -> float:
    # msgspec compares floats with float bounds; the reference compares against the catalog's
    # number exactly. They agree only if the bound is a float exactly.
    if float(bound) != bound:
        raise CatalogNotSupported(f"{signal.name}: bound {bound!r} is not exactly a float")
    return float(bound)


def _field_type(signal: Signal) -> Any:
    """The msgspec type accepting exactly the non-null values the reference accepts."""
    lo, hi = signal.min, signal.max
    if (lo is not None or hi is not None) and signal.type not in ("float", "int"):
        raise CatalogNotSupported(f"{signal.name}: a range on a {signal.type} signal")
    if signal.allowed and signal.type != "string":
        raise CatalogNotSupported(f"{signal.name}: allowed values on a {signal.type} signal")
    match signal.type:
        case "float":
            # Reference: int or float, not bool, not NaN. JSON ints decode to int and JSON
            # floats to float in both, so `int | float` keeps the reference's value types.
            # msgspec never yields NaN or inf: it has no NaN/Infinity literals and refuses
            # numbers that overflow a double ("Number out of range"), so no finite check.
            if lo is None or hi is None:  # the reference checks a range only if both ends are set
                return int | float
            return (
                Annotated[int, msgspec.Meta(ge=math.ceil(lo), le=math.floor(hi))]
                | Annotated[float, msgspec.Meta(ge=_exact_float(lo, signal), le=_exact_float(hi, signal))]
            )
        case "int":
            # Reference: type(v) is int. msgspec refuses true/false and 1.0/1e0 for int (strict
            # mode); an integer bound is exact for int values (ceil/floor for fractional ones).
            # Integers of more than 4300 digits are refused by both (sys.int_max_str_digits).
            if lo is None or hi is None:
                return int
            return Annotated[int, msgspec.Meta(ge=math.ceil(lo), le=math.floor(hi))]
        case "bool":
            return bool
        case "string":
            # A closed set is a Literal: same str equality as the reference's `in allowed`.
            return Literal.__getitem__(signal.allowed) if signal.allowed else str
        case "string[]":
            return list[str]
    raise CatalogNotSupported(f"{signal.name}: unknown type {signal.type!r}")


def _frame_struct(subsystem: str, signals: tuple[Signal, ...]) -> type[msgspec.Struct]:
    """One subsystem's frame: envelope required, signals optional, unknown keys refused."""
    clash = {s.name for s in signals} & set(ENVELOPE)
    if clash:
        raise CatalogNotSupported(f"{subsystem}: signals named like envelope fields: {sorted(clash)}")
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = list(_ENVELOPE_TYPES.items())
    # UNSET, not None, as the default: a missing signal and an explicit null are both valid,
    # but only the null is in the reference's frame dict, and to_builtins drops UNSET fields.
    fields += [(s.name, _field_type(s) | None | msgspec.UnsetType, msgspec.UNSET) for s in signals]
    return msgspec.defstruct(
        f"{subsystem.capitalize()}Frame",
        fields,
        module=__name__,
        forbid_unknown_fields=True,
        gc=False,  # holds only str/int/float/bool/None and lists of str: no cycles to collect
    )


FRAME_TYPES: Final[Mapping[str, type[msgspec.Struct]]] = {
    sub: _frame_struct(sub, BY_SUBSYSTEM[sub]) for sub in SUBSYSTEMS
}
# Decoders are thread-safe and reusable; one per subsystem, shared by every FrameValidator.
# Typed Any: the Structs are built at run time, so their attributes are unknown to mypy.
_DECODERS: Final[Mapping[str, msgspec.json.Decoder[Any]]] = {
    sub: msgspec.json.Decoder(struct) for sub, struct in FRAME_TYPES.items()
}

DEFAULT_TOPIC_CACHE = 65_536  # > 10,000 cars x 5 subsystems; ~15 MB when full


class FrameValidator:
    """`validate_message` with a fast accept path; see the module docstring.

    Not shared state beyond a topic cache, so one per bridge (or per thread) is the intent;
    the cache is only read and written with single dict operations, so sharing is also safe.
    """

    def __init__(self, max_bytes: int = MAX_FRAME_BYTES, topic_cache_size: int = DEFAULT_TOPIC_CACHE):
        self.max_bytes = max_bytes
        self.topic_cache_size = topic_cache_size
        # topic -> (vin, subsystem, decoder), valid topics only. Topics come from the network,
        # so the cache is bounded; when full it starts over, which costs one parse_topic per
        # topic per refill and keeps the code trivially correct (no eviction bookkeeping).
        self._topics: dict[str, tuple[str, str, msgspec.json.Decoder[Any]]] = {}

    def check(self, topic: str, payload: bytes, now_ms: int | None = None) -> Valid | Invalid:
        """The verdict of `validate_message(topic, payload, now_ms, self.max_bytes)`."""
        if len(payload) <= self.max_bytes:
            where = self._topics.get(topic) or self._learn(topic)
            if where is not None:
                vin, subsystem, decoder = where
                try:
                    frame = decoder.decode(payload)
                except (msgspec.MsgspecError, ValueError):
                    # DecodeError/ValidationError, or UnicodeDecodeError (a ValueError) for bad
                    # UTF-8: the reference says why (or, where msgspec is stricter, accepts).
                    pass
                else:
                    if frame.vin == vin and (now_ms is None or frame.ts <= now_ms + TS_MAX_FUTURE_MS):
                        return Valid(vin, subsystem, msgspec.to_builtins(frame))
        # Everything else gets the reference's own answer: reason codes, detail, precedence.
        return validate_message(topic, payload, now_ms, self.max_bytes)

    def _learn(self, topic: str) -> tuple[str, str, msgspec.json.Decoder[Any]] | None:
        """Parse a topic the reference's way; remember it if valid, None (uncached) if not."""
        where = parse_topic(topic)
        if isinstance(where, Invalid):
            return None
        vin, subsystem = where
        if len(self._topics) >= self.topic_cache_size:
            self._topics.clear()
        # Interned: the five subsystem names are then shared by all entries, not one copy each.
        entry = self._topics[topic] = (vin, sys.intern(subsystem), _DECODERS[subsystem])
        return entry
