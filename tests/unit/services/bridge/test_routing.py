"""Routing: valid frames to telemetry.<subsystem> keyed by VIN, everything else to the dead-letter topic."""

from __future__ import annotations

import json
import random

import pytest

from schemas.catalog import SUBSYSTEMS
from schemas.validate import Invalid
from services.bridge.routing import DEADLETTER_MAX_VALUE, Router
from services.bridge.settings import BridgeSettings
from simulators.badframes import BAD_KINDS, make_bad
from tests.unit.services.bridge import fresh_frames

# Corpus kinds whose topic carries no well-formed VIN: their dead letters have no key.
KEYLESS = {"vin_too_short", "vin_with_letter_o", "vin_lowercase"}


@pytest.fixture(scope="module")
def frames() -> list[tuple[str, str, bytes]]:
    return fresh_frames(cars=2)


@pytest.fixture(scope="module")
def router() -> Router:
    return Router(BridgeSettings())


def received_now(payload: bytes) -> int:
    """A receive time just after the valid frame's own timestamp (the validator bounds ts by it)."""
    return int(json.loads(payload)["ts"]) + 250


def test_a_valid_frame_goes_to_its_subsystem_topic_keyed_by_vin(router, frames):
    assert {subsystem for _, subsystem, _ in frames} == set(SUBSYSTEMS)
    for vin, subsystem, payload in frames:
        topic = f"fleet/{vin}/{subsystem}"
        stamp = received_now(payload)
        record = router.route(topic, payload, stamp)
        assert record.topic == f"telemetry.{subsystem}"
        assert record.key == vin.encode()
        assert record.value == payload  # the bytes the car sent, not a re-encoding
        assert record.headers == [("mqtt_topic", topic.encode()), ("received_ms", str(stamp).encode())]
        assert record.reason is None


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_every_bad_kind_becomes_a_dead_letter_with_its_reason(router, frames, kind):
    vin, subsystem, payload = next(f for f in frames if f[1] == "engine")
    topic, bad, expected = make_bad(kind, vin, subsystem, json.loads(payload), random.Random(kind))
    stamp = received_now(payload)
    record = router.route(topic, bad, stamp)

    assert record.topic == "telemetry.deadletter"
    assert record.reason == expected
    assert record.value == bad  # original payload, re-publishable once the cause is fixed
    headers = dict(record.headers)
    assert [name for name, _ in record.headers] == ["mqtt_topic", "received_ms", "dlq_reason", "dlq_detail"]
    assert headers["dlq_reason"] == expected.encode()
    assert headers["dlq_detail"]  # a line a person can act on
    assert headers["mqtt_topic"] == topic.encode()
    assert headers["received_ms"] == str(stamp).encode()
    assert record.key == (None if kind in KEYLESS else vin.encode())


def test_an_oversize_payload_is_truncated_and_says_how_long_it_was(router, frames):
    vin = frames[0][0]
    payload = b"x" * (DEADLETTER_MAX_VALUE + 1000)
    record = router.route(f"fleet/{vin}/engine", payload, 1)
    assert record.reason == "oversize"
    assert record.value == payload[:DEADLETTER_MAX_VALUE]
    assert dict(record.headers)["payload_bytes"] == str(len(payload)).encode()


def test_a_dead_letter_at_the_value_limit_is_kept_whole(router, frames):
    payload = b"x" * DEADLETTER_MAX_VALUE
    record = router.route(f"fleet/{frames[0][0]}/engine", payload, 1)
    assert record.reason == "oversize"
    assert record.value == payload
    assert "payload_bytes" not in dict(record.headers)


@pytest.mark.parametrize("topic", ["fleet/not-a-vin/engine", "fleet", "", "fleet//engine"])
def test_a_dead_letter_has_no_key_when_the_topic_has_no_valid_vin(router, topic):
    record = router.route(topic, b"{}", 1)
    assert record.topic == "telemetry.deadletter"
    assert record.key is None
    assert record.reason is not None


def test_custom_topic_prefix_and_deadletter_topic_are_honoured(frames):
    router = Router(BridgeSettings(topic_prefix="cars.", deadletter_topic="cars.dlq"))
    assert router.topics == {s: f"cars.{s}" for s in SUBSYSTEMS}
    vin, subsystem, payload = frames[0]
    topic = f"fleet/{vin}/{subsystem}"
    assert router.route(topic, payload, received_now(payload)).topic == f"cars.{subsystem}"
    assert router.route(topic, b"nope", received_now(payload)).topic == "cars.dlq"


def test_max_frame_bytes_setting_bounds_valid_frames(frames):
    vin, subsystem, payload = frames[0]
    router = Router(BridgeSettings(max_frame_bytes=len(payload) - 1))
    record = router.route(f"fleet/{vin}/{subsystem}", payload, received_now(payload))
    assert record.reason == "oversize"
    assert record.value == payload


def test_an_injected_checker_decides(frames):
    seen = []

    def check(topic: str, payload: bytes, now_ms: int) -> Invalid:
        seen.append((topic, payload, now_ms))
        return Invalid("bad_timestamp", "clock says no")

    vin, subsystem, payload = frames[0]
    record = Router(BridgeSettings(), check).route(f"fleet/{vin}/{subsystem}", payload, 42)
    assert seen == [(f"fleet/{vin}/{subsystem}", payload, 42)]
    assert (record.reason, dict(record.headers)["dlq_detail"]) == ("bad_timestamp", b"clock says no")
