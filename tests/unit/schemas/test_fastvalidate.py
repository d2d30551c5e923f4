"""Differential tests: FrameValidator must give validate_message's verdict for every message.

The reference (`schemas.validate`) defines the semantics; the fast validator is only allowed to
be faster. Every comparison here is of whole results: Valid with the same vin, subsystem and
frame (values of the same type too), or Invalid with the same reason and detail.

FASTVALIDATE_FUZZ_CASES / FASTVALIDATE_FUZZ_SEED run a longer or different fuzz campaign.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec
import pytest

import schemas.fastvalidate as fastvalidate
from schemas.catalog import BY_SUBSYSTEM, ENVELOPE, SCHEMA_VERSION, SIGNALS, SUBSYSTEMS, Signal
from schemas.fastvalidate import FRAME_TYPES, CatalogNotSupported, FrameValidator
from schemas.validate import (
    MAX_FRAME_BYTES,
    REASONS,
    TS_MAX_FUTURE_MS,
    TS_MIN_MS,
    Invalid,
    Valid,
    validate_message,
)
from simulators.badframes import BAD_KINDS, make_bad
from simulators.fleet import Fleet, FleetConfig, vin_for
from simulators.simulation import encode

NOW = 1_795_000_100_000
FUZZ_CASES = int(os.environ.get("FASTVALIDATE_FUZZ_CASES", "20000"))
FUZZ_SEED = int(os.environ.get("FASTVALIDATE_FUZZ_SEED", "20261122"))


def typed(result: Valid | Invalid) -> tuple[Any, ...]:
    """A result in a form where 3 and 3.0 differ (== alone would call them equal)."""
    if isinstance(result, Valid):
        values = {k: (type(v), v) for k, v in result.frame.items()}
        return ("valid", result.vin, result.subsystem, values)
    return ("invalid", result.reason, result.detail)


@pytest.fixture(scope="module")
def fleet_frames():
    """(vin, subsystem, frame) from a seeded fleet with faults, every subsystem many times."""
    fleet = Fleet(FleetConfig(cars=40, seed=7, fault_rate=20.0))
    return [frame for _ in range(30) for frame in fleet.step()]


# --- the Structs are the catalog


def test_one_struct_per_subsystem_with_exactly_the_catalog_fields():
    assert set(FRAME_TYPES) == set(SUBSYSTEMS)
    for sub, struct in FRAME_TYPES.items():
        fields = msgspec.structs.fields(struct)
        assert [f.name for f in fields] == [*ENVELOPE, *(s.name for s in BY_SUBSYSTEM[sub])]
        assert all(f.required for f in fields[: len(ENVELOPE)])
        assert all(f.default is msgspec.UNSET for f in fields[len(ENVELOPE) :])
        assert struct.__struct_config__.forbid_unknown_fields


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "bool", "min": 0, "max": 1},  # the reference would range-check True as 1
        {"type": "string", "min": 0, "max": 1},  # the reference would raise TypeError
        {"type": "string[]", "allowed": ("A",)},  # the reference would raise TypeError (list in set)
        {"type": "int", "allowed": ("A",)},
        {"type": "float", "min": 0, "max": 2**53 + 1},  # not exactly a float
    ],
)
def test_signals_the_fast_path_cannot_model_fail_loudly(changes):
    signal = dataclasses.replace(BY_SUBSYSTEM["engine"][1], **changes)
    with pytest.raises(CatalogNotSupported):
        fastvalidate._field_type(signal)


# --- valid frames: the accept path


def test_fleet_frames_are_valid_and_identical(fleet_frames):
    validator = FrameValidator()
    assert len(fleet_frames) >= 5000
    assert {sub for _, sub, _ in fleet_frames} == set(SUBSYSTEMS)
    for vin, subsystem, frame in fleet_frames:
        topic, payload = f"fleet/{vin}/{subsystem}", encode(frame)
        fast, ref = validator.check(topic, payload, NOW), validate_message(topic, payload, NOW)
        assert isinstance(ref, Valid)
        assert typed(fast) == typed(ref)


def test_fast_path_really_is_taken_for_valid_frames(fleet_frames, monkeypatch):
    fallbacks = []
    monkeypatch.setattr(fastvalidate, "validate_message", lambda *a: fallbacks.append(a))
    validator = FrameValidator()
    for vin, subsystem, frame in fleet_frames[:500]:
        assert isinstance(validator.check(f"fleet/{vin}/{subsystem}", encode(frame), NOW), Valid)
    assert fallbacks == []


# --- the bad-frame corpus


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_every_corpus_kind_gets_the_reference_verdict(kind, fleet_frames):
    validator = FrameValidator()
    first_of_each = {sub: (vin, sub, frame) for vin, sub, frame in reversed(fleet_frames)}
    for vin, subsystem, frame in first_of_each.values():
        topic, payload, reason = make_bad(kind, vin, subsystem, frame, random.Random(1))
        fast, ref = validator.check(topic, payload, NOW), validate_message(topic, payload, NOW)
        assert typed(fast) == typed(ref), (kind, subsystem)
        assert isinstance(fast, Invalid) and fast.reason == reason, (kind, subsystem, fast)


# --- what the reference accepts and msgspec refuses: the fallback must accept it too


def _envelope(vin: str) -> dict[str, Any]:
    return {"vin": vin, "ts": NOW - 1000, "seq": 3, "schema_version": SCHEMA_VERSION}


VIN = vin_for(42)
LENIENT = {
    "utf8_bom": b"\xef\xbb\xbf" + encode(_envelope(VIN)),
    "utf16": json.dumps(_envelope(VIN)).encode("utf-16"),
    "utf32_le_no_bom": json.dumps(_envelope(VIN)).encode("utf-32-le"),
    "escaped_lone_surrogate": encode({**_envelope(VIN), "dtc_list": ["\ud800"]}),
    "utf8_encoded_surrogate": json.dumps(
        {**_envelope(VIN), "dtc_list": ["\ud800"]}, ensure_ascii=False
    ).encode("utf-8", "surrogatepass"),
    "duplicate_key_bad_then_good": encode(_envelope(VIN))[:-1] + b',"dtc_count":999,"dtc_count":2}',
}


@pytest.mark.parametrize("case", sorted(LENIENT))
def test_reference_leniencies_are_accepted_through_the_fallback(case):
    topic = f"fleet/{VIN}/electronics"
    fast, ref = FrameValidator().check(topic, LENIENT[case], NOW), validate_message(topic, LENIENT[case], NOW)
    assert isinstance(ref, Valid), ref
    assert typed(fast) == typed(ref)


@pytest.mark.parametrize("version", [float(SCHEMA_VERSION), True])
def test_schema_version_of_another_type_is_refused_by_both(version):
    topic, payload = f"fleet/{VIN}/electronics", encode({**_envelope(VIN), "schema_version": version})
    fast, ref = FrameValidator().check(topic, payload, NOW), validate_message(topic, payload, NOW)
    assert isinstance(ref, Invalid) and ref.reason == "schema_violation"
    assert typed(fast) == typed(ref)


def test_deeply_nested_payload_is_a_parse_error_not_an_exception():
    payload = b'{"x":' + b"[" * 2000 + b"]" * 2000 + b"}"  # 4 KB: well under the size limit
    result = FrameValidator().check(f"fleet/{VIN}/engine", payload, NOW)
    assert isinstance(result, Invalid) and result.reason == "parse_error"


def test_topic_cache_is_bounded():
    validator = FrameValidator(topic_cache_size=3)
    for i in range(10):
        vin = vin_for(i)
        result = validator.check(f"fleet/{vin}/engine", encode(_envelope(vin)), NOW)
        assert isinstance(result, Valid) and result.vin == vin
        assert len(validator._topics) <= 3


# --- the mutation fuzzer


@dataclasses.dataclass(frozen=True)
class Raw:
    """A JSON token written verbatim into the payload (json.dumps cannot write these)."""

    token: bytes


RAW_TOKENS = [
    Raw(t)
    for t in (
        b"NaN",
        b"Infinity",
        b"-Infinity",
        b"nan",
        b"1e400",
        b"-1e400",
        b"1e-400",
        b"1E2",
        b"1e0",
        b"1.0",
        b"-0",
        b"-0.0",
        b"+1",
        b"01",
        b".5",
        b"1.",
        b"0x10",
        b"tRue",
        b"1" * 4300,
        b"1" * 4301,
        b"-" + b"1" * 4299,
        b"-" + b"1" * 4300,
        b"0." + b"0" * 400 + b"1",
        b"1" + b"0" * 400 + b".5e-400",
        b"1" * 5000 + b".0",
        b"0e999999999999999999",
        b"1e-999999999999999999",
        b"1e999999999999999999",
        b"-0e-0",
        b'"\\ud800"',
        b'"\\udc00\\ud800"',
        b'"\\ud83d\\ude00"',
        b'"\xed\xa0\x80"',
        b'"\xff"',
        b'"\xc0\xaf"',
        b'"\xf4\x90\x80\x80"',
        b'"\\u0000"',
        b'"a\tb"',
        b'"\x7f"',
        b'"\\x41"',
        b'"\\u004"',
        b'"\xe2\x80\xa8"',
        b"[" * 60 + b"]" * 60,
        b'{"a":' * 40 + b"1" + b"}" * 40,
    )
]
STRINGS = ["P0300", "U0100", "", " ", "é", "😀", "\u2028", '"', "\\", "/", "\x7f", "\x00", "\ud800", "NORMAL"]
ALLOWED = sorted({a for s in SIGNALS for a in s.allowed})
OTHER_VIN = vin_for(999)


def random_string(rng: random.Random) -> str:
    return "".join(rng.choice(STRINGS) for _ in range(rng.randint(0, 3)))


def valid_value(signal: Signal, rng: random.Random) -> Any:
    """A value the catalog allows for `signal` (edges often), or None."""
    if rng.random() < 0.1:
        return None
    lo, hi = signal.min, signal.max
    if signal.type == "float":
        assert lo is not None and hi is not None
        pick = rng.random()
        if pick < 0.2:
            return rng.choice([lo, hi, float(lo), float(hi)])
        if pick < 0.35:
            return rng.randint(math.ceil(lo), math.floor(hi))
        x = rng.uniform(lo, hi)
        if pick < 0.5:
            return Raw(f"{x:.{rng.randint(0, 20)}e}".encode())  # exponent form, any precision
        return round(x, rng.randint(0, 17))
    if signal.type == "int":
        assert lo is not None and hi is not None
        return rng.choice([int(lo), int(hi), rng.randint(int(lo), int(hi))])
    if signal.type == "bool":
        return rng.random() < 0.5
    if signal.type == "string":
        return rng.choice(signal.allowed) if signal.allowed else random_string(rng)
    return [random_string(rng) for _ in range(rng.randint(0, 4))]


def any_value(signal: Signal | None, rng: random.Random) -> Any:
    """Anything at all: type swaps, edges and just beyond, tokens Python writes and cannot."""
    pick = rng.random()
    if signal is not None and pick < 0.3:
        return valid_value(signal, rng)
    if signal is not None and signal.min is not None and signal.max is not None and pick < 0.6:
        lo, hi = signal.min, signal.max
        return rng.choice(
            [
                lo - 1,
                hi + 1,
                math.nextafter(lo, -math.inf),
                math.nextafter(hi, math.inf),
                math.nextafter(lo, math.inf),
                math.nextafter(hi, -math.inf),
                float(lo),
                float(hi),
                Raw(repr(float(hi)).encode() + b"0000000000000000001"),  # parses to hi exactly
                Raw(repr(float(hi)).encode() + b"00000000001"),  # just above hi
                Raw(b"-" + repr(float(-lo)).encode() + b"00000000001"),  # just below lo
                Raw(f"{hi:e}".encode()),
                Raw(f"{lo:E}".encode()),
            ]
        )
    return rng.choice(
        [
            None,
            True,
            False,
            0,
            1,
            -1,
            0.5,
            -0.0,
            2**31,
            2**63 - 1,
            2**63,
            2**64,
            2**70,
            -(2**70),
            math.nan,
            math.inf,
            -math.inf,
            "",
            "12.5",
            rng.choice(ALLOWED),
            rng.choice(ALLOWED).lower(),
            random_string(rng),
            [],
            [random_string(rng)],
            [1],
            [None],
            [["P0300"]],
            {},
            {"v": 1},
            rng.choice(RAW_TOKENS),
        ]
    )


def envelope_value(key: str, case: Case, rng: random.Random) -> Any:
    """Values for the envelope fields: edges of each rule and type swaps."""
    vin, now_ms = case.vin, case.now_ms if case.now_ms is not None else NOW
    ts = case.frame.get("ts") if type(case.frame.get("ts")) is int else NOW - 1000
    choices: dict[str, list[Any]] = {
        "vin": [
            OTHER_VIN,
            vin.lower(),
            vin + " ",
            12345,
            None,
            "",
            [vin],
            Raw(b'"\\u%04x' % ord(vin[0]) + vin[1:].encode() + b'"'),  # the topic vin once unescaped
        ],
        "ts": [
            TS_MIN_MS,
            TS_MIN_MS - 1,
            TS_MIN_MS + 1,
            now_ms + TS_MAX_FUTURE_MS,
            now_ms + TS_MAX_FUTURE_MS + 1,
            ts + 0.5,
            float(ts),
            str(ts),
            True,
            None,
            0,
            -1,
            2**63,
            2**64,
            2**70,
            Raw(b"1.795e12"),
            Raw(str(ts).encode() + b".0"),
            Raw(str(ts).encode() + b"e0"),
        ],
        "seq": [
            0,
            1,
            -1,
            2**63 - 1,
            2**63,
            2**64,
            2**70,
            True,
            False,
            1.0,
            None,
            "1",
            Raw(b"-0"),
            Raw(b"1e3"),
        ],
        "schema_version": [
            SCHEMA_VERSION,
            SCHEMA_VERSION + 1,
            float(SCHEMA_VERSION),
            True,
            False,
            0,
            99,
            str(SCHEMA_VERSION),
            None,
            Raw(b"1e0"),
            Raw(b"-0"),
        ],
    }
    return rng.choice(choices[key] + [any_value(None, rng)])


@dataclasses.dataclass
class Case:
    """One fuzz message under construction; `what` says how it was made, for failures."""

    vin: str
    subsystem: str
    frame: Any
    now_ms: int | None = NOW
    topic: str | None = None
    max_bytes: int = MAX_FRAME_BYTES
    size_delta: int | None = None  # max_bytes = len(payload) + size_delta, once the payload exists
    post: list[Callable[[bytes, random.Random], bytes]] = dataclasses.field(default_factory=list)
    what: list[str] = dataclasses.field(default_factory=list)


def dump(obj: Any, rng: random.Random) -> bytes:
    """JSON in one of several styles, with Raw tokens spliced in verbatim."""
    raws: list[bytes] = []

    def placeholder(o: Any) -> str:
        if isinstance(o, Raw):
            raws.append(o.token)
            return f"@@raw{len(raws) - 1}@@"
        raise TypeError(o)

    style = rng.random()
    if style < 0.6:
        text = json.dumps(obj, separators=(",", ":"), default=placeholder)
    elif style < 0.8:
        text = json.dumps(obj, ensure_ascii=False, default=placeholder)
    else:
        text = json.dumps(
            obj, indent=rng.choice([0, 1, 2, "\t"]), ensure_ascii=rng.random() < 0.5, default=placeholder
        )
    data = text.encode(
        "utf-8", "surrogatepass"
    )  # lone surrogates in ensure_ascii=False: bytes json.loads takes
    for i, token in enumerate(raws):
        data = data.replace(f'"@@raw{i}@@"'.encode(), token, 1)
    return data


# Mutations of the frame before it is written; each may also queue a byte-level change.
def m_drop_key(c: Case, rng: random.Random) -> None:
    if isinstance(c.frame, dict) and c.frame:
        key = rng.choice(list(c.frame))
        del c.frame[key]
        c.what.append(f"drop {key}")


def m_unknown_key(c: Case, rng: random.Random) -> None:
    if isinstance(c.frame, dict):
        other = rng.choice([s for s in SIGNALS if s.subsystem != c.subsystem])
        key = rng.choice(["warp_drive", "", "VIN", "vin ", "Vin", "ts\x00", "é", other.name])
        c.frame[key] = any_value(other, rng)
        c.what.append(f"add {key!r}")


def m_signal(c: Case, rng: random.Random) -> None:
    if isinstance(c.frame, dict):
        signal = rng.choice(BY_SUBSYSTEM[c.subsystem])
        c.frame[signal.name] = value = any_value(signal, rng)
        c.what.append(f"{signal.name}={value!r:.60}")


def m_randomize_valid(c: Case, rng: random.Random) -> None:
    if isinstance(c.frame, dict):
        for signal in BY_SUBSYSTEM[c.subsystem]:
            if rng.random() < 0.15:
                c.frame.pop(signal.name, None)
            else:
                c.frame[signal.name] = valid_value(signal, rng)
        c.what.append("random valid signals")


def m_envelope(c: Case, rng: random.Random) -> None:
    if isinstance(c.frame, dict):
        key = rng.choice(ENVELOPE)
        c.frame[key] = value = envelope_value(key, c, rng)
        c.what.append(f"{key}={value!r:.60}")


def m_now(c: Case, rng: random.Random) -> None:
    ts = c.frame.get("ts") if isinstance(c.frame, dict) else None
    if type(ts) is int and rng.random() < 0.7:
        c.now_ms = ts - TS_MAX_FUTURE_MS + rng.choice([-1, 0, 1])  # -1: ts is just too far ahead
    else:
        c.now_ms = rng.choice([None, 0, TS_MIN_MS, NOW])
    c.what.append(f"now_ms={c.now_ms}")


def m_shuffle(c: Case, rng: random.Random) -> None:
    if isinstance(c.frame, dict):
        items = list(c.frame.items())
        rng.shuffle(items)
        c.frame = dict(items)
        c.what.append("shuffled")


def m_shape(c: Case, rng: random.Random) -> None:
    c.frame = rng.choice([[c.frame], {"frame": c.frame}, "hello", 42, None, True, []])
    c.what.append(f"shape {type(c.frame).__name__}")


def m_topic(c: Case, rng: random.Random) -> None:
    v, s = c.vin, c.subsystem
    other_sub = rng.choice([x for x in SUBSYSTEMS if x != s])
    c.topic = rng.choice(
        [
            f"fleet/{v}",
            f"fleet/{v}/{s}/extra",
            f"cars/{v}/{s}",
            f"FLEET/{v}/{s}",
            f"/fleet/{v}/{s}",
            f"fleet/{v}/{s}/",
            f"fleet//{s}",
            f"fleet/{v.lower()}/{s}",
            f"fleet/{v[:-1]}I/{s}",
            f"fleet/{v[:-1]}O/{s}",
            f"fleet/{v[:-1]}Q/{s}",
            f"fleet/{v[:16]}/{s}",
            f"fleet/{v}0/{s}",
            f"fleet/{v[:-1]}\uff11/{s}",  # fullwidth digit one
            f"fleet/{v[:-1]}\u0661/{s}",  # Arabic-Indic digit one
            f"fleet/{v}\n/{s}",
            f"fleet/{v}/{s}\x00",
            f"fleet/{v}/{s.capitalize()}",
            f"fleet/{v}/hyperdrive",
            f"fleet/{v}/{other_sub}",
            f"fleet/{OTHER_VIN}/{s}",
            "",
            "fleet",
        ]
    )
    c.what.append(f"topic {c.topic!r}")


def m_size(c: Case, rng: random.Random) -> None:
    c.size_delta = rng.choice([-1, 0, 1])
    c.what.append(f"max_bytes=len{c.size_delta:+d}")


def _post(name: str, fn: Callable[[bytes, random.Random], bytes]) -> Callable[[Case, random.Random], None]:
    def mutate(c: Case, rng: random.Random) -> None:
        c.post.append(fn)
        c.what.append(name)

    return mutate


def b_duplicate_key(p: bytes, rng: random.Random) -> bytes:
    key = rng.choice([*ENVELOPE, *(s.name for s in SIGNALS)])
    value = dump(any_value(None, rng) if rng.random() < 0.5 else NOW - 1000, rng)
    pair = json.dumps(key).encode() + b":" + value
    if rng.random() < 0.5:
        return p.replace(b"{", b"{" + pair + b",", 1)
    end = p.rfind(b"}")
    return p[:end] + b"," + pair + p[end:] if end >= 0 else p


def b_escape_key(p: bytes, rng: random.Random) -> bytes:
    key = rng.choice([*ENVELOPE, *(s.name for s in SIGNALS), *ALLOWED])
    escaped = b'"\\u%04x' % ord(key[0]) + key[1:].encode() + b'"'
    return p.replace(json.dumps(key).encode(), escaped)


def b_truncate(p: bytes, rng: random.Random) -> bytes:
    return p[: rng.randrange(len(p))] if p else p


def b_flip(p: bytes, rng: random.Random) -> bytes:
    if not p:
        return p
    i = rng.randrange(len(p))
    return p[:i] + bytes([rng.randrange(256)]) + p[i + 1 :]


def b_insert(p: bytes, rng: random.Random) -> bytes:
    i = rng.randrange(len(p) + 1)
    junk = rng.choice(
        [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\x00", b"\t", b"}", b",", b'"']
    )
    return p[:i] + junk + p[i:]


def b_whitespace(p: bytes, rng: random.Random) -> bytes:
    spaces = [b" ", b"\t", b"\n", b"\r", b"\x0c", b"\x0b", b"\xc2\xa0", b"\xe2\x80\xa8", b"\x00"]
    where = rng.random()
    ws = rng.choice(spaces) * rng.randint(1, 3)
    if where < 0.4:
        return ws + p
    if where < 0.8:
        return p + ws
    return p.replace(b",", b"," + ws, 1).replace(b":", ws + b":", 1)


def b_bom(p: bytes, rng: random.Random) -> bytes:
    return b"\xef\xbb\xbf" + p


def b_reencode(p: bytes, rng: random.Random) -> bytes:
    try:
        text = p.decode("utf-8")
    except UnicodeDecodeError:
        return p
    return text.encode(
        rng.choice(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "latin-1"]), "replace"
    )


def b_trailing(p: bytes, rng: random.Random) -> bytes:
    return p + rng.choice([b"}", b",", b"x", b"{}", b" null"])


MUTATIONS: list[tuple[float, Callable[[Case, random.Random], None]]] = [
    (4, m_signal),
    (2, m_randomize_valid),
    (2, m_envelope),
    (1.5, m_drop_key),
    (1.5, m_unknown_key),
    (1, m_now),
    (1, m_shuffle),
    (0.3, m_shape),
    (1, m_topic),
    (0.4, m_size),
    (1, _post("duplicate key", b_duplicate_key)),
    (0.5, _post("escaped key", b_escape_key)),
    (0.5, _post("truncate", b_truncate)),
    (0.5, _post("flip byte", b_flip)),
    (0.5, _post("insert bytes", b_insert)),
    (0.7, _post("whitespace", b_whitespace)),
    (0.3, _post("bom", b_bom)),
    (0.3, _post("re-encode", b_reencode)),
    (0.3, _post("trailing", b_trailing)),
]


def build(rng: random.Random, base: list[tuple[str, str, dict[str, Any]]]) -> tuple[Case, str, bytes]:
    vin, subsystem, frame = rng.choice(base)
    case = Case(vin, subsystem, dict(frame))
    weights = [w for w, _ in MUTATIONS]
    for mutate in rng.choices([m for _, m in MUTATIONS], weights, k=rng.choice([0, 1, 1, 1, 2, 2, 3])):
        mutate(case, rng)
    payload = dump(case.frame, rng)
    for post in case.post:
        payload = post(payload, rng)
    if case.size_delta is not None:
        case.max_bytes = len(payload) + case.size_delta
    return case, case.topic if case.topic is not None else f"fleet/{vin}/{subsystem}", payload


def test_mutation_fuzzer_agrees_with_the_reference(fleet_frames, monkeypatch):
    rng = random.Random(FUZZ_SEED)
    base = fleet_frames[:: len(fleet_frames) // 200]
    # Two validators that keep their caches across cases; the tiny one clears all the time.
    by_limit: dict[int, tuple[FrameValidator, FrameValidator]] = {}

    real_validate = fastvalidate.validate_message
    fallbacks: Counter[str] = Counter()

    def counting(*args: Any) -> Valid | Invalid:
        result = real_validate(*args)
        fallbacks["valid" if isinstance(result, Valid) else "invalid"] += 1
        return result

    monkeypatch.setattr(fastvalidate, "validate_message", counting)

    verdicts: Counter[str] = Counter()
    disagreements = []
    for n in range(FUZZ_CASES):
        case, topic, payload = build(rng, base)
        pair = by_limit.setdefault(
            case.max_bytes, (FrameValidator(case.max_bytes), FrameValidator(case.max_bytes, 2))
        )
        try:
            ref = real_validate(topic, payload, case.now_ms, case.max_bytes)
            results = [v.check(topic, payload, case.now_ms) for v in pair]
        except Exception as exc:
            raise AssertionError(f"case {n} {case.what} raised: {topic!r} {payload[:200]!r}") from exc
        for fast in results:
            if typed(fast) != typed(ref):
                disagreements.append((n, case.what, topic, payload[:300], ref, fast))
        verdicts["valid" if isinstance(ref, Valid) else ref.reason] += 1

    assert not disagreements, "\n".join(map(repr, disagreements[:10]))
    # The fuzzer must reach every verdict, and valid frames both ways: most through msgspec,
    # some (reference leniencies) only through the fallback.
    stats = f"verdicts {dict(verdicts)}, fallbacks {dict(fallbacks)}"
    assert set(verdicts) == {"valid", *REASONS}, stats
    assert verdicts["valid"] > FUZZ_CASES // 5, stats
    assert 0 < fallbacks["valid"] < verdicts["valid"], stats
