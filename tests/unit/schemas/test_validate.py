"""Validation reason codes, using the bad-frame corpus the simulator mixes in."""

import random

import pytest

from schemas.validate import Invalid, Valid, validate_message
from simulators.badframes import BAD_KINDS, CORPUS, make_bad
from simulators.fleet import Fleet, FleetConfig

NOW = 1_795_000_100_000


@pytest.fixture(scope="module")
def sample_frames():
    fleet = Fleet(FleetConfig(cars=2, seed=11))
    return fleet.step()


def test_corpus_has_at_least_30_kinds():
    assert len(CORPUS) >= 30


@pytest.mark.parametrize("kind", BAD_KINDS)
def test_each_bad_kind_gets_its_reason(kind, sample_frames):
    vin, subsystem, frame = sample_frames[0]
    topic, payload, reason = make_bad(kind, vin, subsystem, frame, random.Random(1))
    result = validate_message(topic, payload, now_ms=NOW)
    assert isinstance(result, Invalid), kind
    assert result.reason == reason, (kind, result)
    assert "\n" not in result.detail and len(result.detail) < 300


def test_valid_frames_pass_and_keep_their_values(sample_frames):
    import json

    for vin, subsystem, frame in sample_frames:
        result = validate_message(f"fleet/{vin}/{subsystem}", json.dumps(frame).encode(), now_ms=NOW)
        assert isinstance(result, Valid)
        assert result.frame == frame


def test_schema_version_must_be_the_integer_itself():
    import json

    from schemas.validate import Invalid, validate_message

    vin = "1FLEET00000000001"
    for version in (1.0, True, "1"):
        frame = {"vin": vin, "ts": 1_795_000_000_000, "seq": 1, "schema_version": version}
        result = validate_message(f"fleet/{vin}/engine", json.dumps(frame).encode())
        assert isinstance(result, Invalid) and result.reason == "schema_violation", version
