"""What one frame costs to validate: `json.loads` alone, the reference validator, the fast one.

    from bench.decode import measure
    measure(frames=100_000)
    # {"json_loads_us": 5.9, "reference_us": 11.6, "fast_us": 2.6,
    #  "reference_invalid_us": 7.0, "fast_invalid_us": 8.1}

Valid frames: one seeded fleet's frames, encoded and with their topics built beforehand, as the
bridge receives them from paho; `now_ms` is the fleet's clock, so every frame is valid. Invalid
frames: every kind of the bad-frame corpus on every subsystem, cycled to the same count; the
fast path's cost there is a failed msgspec decode plus the reference's own answer.

Each figure is the median of 5 timed passes; the passes of all validators are interleaved, so
a slow moment of the machine lands on all of them instead of one. Microseconds per frame.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Sequence

from schemas.catalog import SUBSYSTEMS
from schemas.fastvalidate import FrameValidator
from schemas.validate import Invalid, Valid, validate_message
from simulators.badframes import BAD_KINDS, make_bad
from simulators.fleet import Fleet, FleetConfig
from simulators.simulation import encode

REPEATS = 5
CARS = 500  # 2,500 frames a tick; 100,000 frames are 40 ticks over 2,500 topics

Message = tuple[str, bytes]


def valid_messages(frames: int, seed: int = 1) -> tuple[list[Message], int]:
    """`frames` valid (topic, payload) pairs of a seeded fleet, and a now_ms that accepts them."""
    fleet = Fleet(FleetConfig(cars=CARS, seed=seed))
    messages: list[Message] = []
    while len(messages) < frames:
        messages += [(f"fleet/{vin}/{sub}", encode(frame)) for vin, sub, frame in fleet.step()]
    return messages[:frames], fleet.ts


def invalid_messages(count: int, seed: int = 1) -> list[Message]:
    """Every bad-frame kind on a valid frame of every subsystem, cycled to `count` messages."""
    samples = {
        sub: (vin, sub, frame) for vin, sub, frame in reversed(Fleet(FleetConfig(cars=2, seed=seed)).step())
    }
    rng = random.Random(seed)
    corpus = [
        make_bad(kind, vin, sub, frame, rng)[:2] for kind in BAD_KINDS for vin, sub, frame in samples.values()
    ]
    return [corpus[i % len(corpus)] for i in range(count)]


def _per_frame_us(run: Callable[[], object], count: int) -> float:
    t0 = time.perf_counter()
    run()
    return (time.perf_counter() - t0) / count * 1e6


def measure(frames: int = 100_000) -> dict[str, float]:
    """Microseconds per frame, median of REPEATS interleaved passes; see the module docstring."""
    valid, now_ms = valid_messages(frames)
    invalid = invalid_messages(frames)
    assert {topic.rsplit("/", 1)[1] for topic, _ in valid} == set(SUBSYSTEMS)
    fast = FrameValidator()
    check = fast.check
    loads = json.loads

    # Untimed warm-up, which also fills the topic cache (the bridge runs in that steady state)
    # and makes sure the figures are of the path they are named after.
    if not all(isinstance(check(topic, payload, now_ms), Valid) for topic, payload in valid):
        raise RuntimeError("a fleet frame is not valid: the valid-path figures would be wrong")
    if not all(isinstance(check(topic, payload, now_ms), Invalid) for topic, payload in invalid):
        raise RuntimeError("a corpus frame is valid: the invalid-path figures would be wrong")

    def json_loads() -> None:
        for _, payload in valid:
            loads(payload)

    def reference(messages: Sequence[Message]) -> Callable[[], None]:
        def run() -> None:
            for topic, payload in messages:
                validate_message(topic, payload, now_ms)

        return run

    def fast_path(messages: Sequence[Message]) -> Callable[[], None]:
        def run() -> None:
            for topic, payload in messages:
                check(topic, payload, now_ms)

        return run

    runs: dict[str, tuple[Callable[[], None], int]] = {
        "json_loads_us": (json_loads, len(valid)),
        "reference_us": (reference(valid), len(valid)),
        "fast_us": (fast_path(valid), len(valid)),
        "reference_invalid_us": (reference(invalid), len(invalid)),
        "fast_invalid_us": (fast_path(invalid), len(invalid)),
    }
    samples: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(REPEATS):
        for name, (run, count) in runs.items():
            samples[name].append(_per_frame_us(run, count))
    return {name: statistics.median(values) for name, values in samples.items()}


if __name__ == "__main__":
    for name, us in measure().items():
        print(f"{name:22} {us:7.3f} us/frame")
