"""The hot path's per-worker logic without Faust: batches, one write per car, the staleness timer."""

from __future__ import annotations

import json

from services.hot.engine import RuleEngine
from services.hot.evaluator import Evaluator, Record

VIN_A, VIN_B = "1FLEET00000000001", "1FLEET00000000002"
T0 = 1_795_000_000_000
TOPICS = {"t.engine": "engine", "t.electronics": "electronics"}


class FakeTable(dict):
    """The Table as the evaluator reads it; tests apply `writes` like the agent does."""

    def apply(self, writes):
        for vin, (_partition, state) in writes.items():
            self[vin] = state


def frame(vin: str, tick: int, **signals) -> bytes:
    return json.dumps(
        {"vin": vin, "ts": T0 + tick * 1000, "seq": tick, "schema_version": 1, **signals}
    ).encode()


def engine_record(vin, tick, coolant=90.0, received=None, partition=0):
    headers = [("received_ms", str(received if received is not None else T0 + tick * 1000).encode())]
    value = frame(vin, tick, coolant_temp_c=coolant, engine_running=True, engine_rpm=2000.0)
    return Record("t.engine", partition, vin.encode(), value, headers)


def electronics_record(vin, tick, received, partition=0):
    value = frame(vin, tick, ignition="ON")
    return Record("t.electronics", partition, vin.encode(), value, [("received_ms", str(received).encode())])


def make():
    table = FakeTable()
    return Evaluator(RuleEngine(), TOPICS, table.get, cars=table.keys, partition_for=lambda vin: 0), table


def test_one_state_write_per_car_per_batch():
    evaluator, table = make()
    batch = [engine_record(VIN_A, t) for t in range(1, 6)] + [engine_record(VIN_B, 1, partition=3)]
    out = evaluator.on_batch(batch, T0)
    assert set(out.writes) == {VIN_A, VIN_B}
    assert out.writes[VIN_B][0] == 3  # the car's own partition, for the changelog
    assert evaluator.frames == 6 and evaluator.writes == 2


def test_a_redelivered_batch_changes_nothing():
    evaluator, table = make()
    batch = [engine_record(VIN_A, t, coolant=118.0) for t in range(1, 40)]
    first = evaluator.on_batch(batch, T0)
    table.apply(first.writes)
    assert [a.status for _, a in first.alerts] == ["raised"]
    again = evaluator.on_batch(batch, T0)
    assert again.alerts == [] and again.writes == {}


def test_an_episode_raised_across_batches_is_raised_once_with_one_id():
    evaluator, table = make()
    statuses = []
    for start in range(1, 60, 10):
        out = evaluator.on_batch(
            [engine_record(VIN_A, t, coolant=112.0) for t in range(start, start + 10)], T0
        )
        table.apply(out.writes)
        statuses += [(a.status, a.alert_id) for _, a in out.alerts]
    assert [s for s, _ in statuses] == ["raised"]


def test_records_that_are_not_our_frames_are_skipped():
    evaluator, _ = make()
    bad = [
        Record("t.engine", 0, None, frame(VIN_A, 1), []),
        Record("t.engine", 0, VIN_A.encode(), b"not json", []),
        Record("other", 0, VIN_A.encode(), frame(VIN_A, 1), []),
    ]
    out = evaluator.on_batch(bad, T0)
    assert evaluator.skipped == 3 and out.writes == {} and out.alerts == []


def test_a_silent_car_in_a_live_partition_goes_stale_and_clears_on_its_next_frame():
    evaluator, table = make()
    for tick in range(1, 11):  # both cars send, ignition on
        out = evaluator.on_batch(
            [
                electronics_record(VIN_A, tick, T0 + tick * 1000),
                electronics_record(VIN_B, tick, T0 + tick * 1000),
            ],
            T0,
        )
        table.apply(out.writes)
    for tick in range(11, 16):  # A goes silent, B keeps the partition's clock moving
        table.apply(evaluator.on_batch([electronics_record(VIN_B, tick, T0 + tick * 1000)], T0).writes)
    stale = evaluator.on_timer(T0 + 99_000)
    assert [(vin, a.rule, a.status) for vin, a in stale.alerts] == [(VIN_A, "stale", "raised")]
    assert stale.alerts[0][1].detected_at == T0 + 99_000
    assert list(stale.writes) == [VIN_A]  # the episode is in the car's state, written to the Table
    table.apply(stale.writes)
    assert evaluator.on_timer(T0 + 99_500).alerts == []  # raised once
    back = evaluator.on_batch([electronics_record(VIN_A, 16, T0 + 16_000)], T0)
    assert [(a.rule, a.status) for _, a in back.alerts] == [("stale", "cleared")]


def test_a_partition_that_went_quiet_as_a_whole_raises_nothing():
    evaluator, table = make()
    for tick in range(1, 11):
        table.apply(evaluator.on_batch([electronics_record(VIN_A, tick, T0 + tick * 1000)], T0).writes)
    # nothing more arrives at all (the bridge is down): the partition's clock stands still
    assert evaluator.on_timer(T0 + 600_000).alerts == []


def test_a_worker_restarted_after_a_car_fell_silent_still_finds_it_stale():
    first, table = make()
    for tick in range(1, 11):
        out = first.on_batch(
            [
                electronics_record(VIN_A, tick, T0 + tick * 1000),
                electronics_record(VIN_B, tick, T0 + tick * 1000),
            ],
            T0,
        )
        table.apply(out.writes)
    # a new process: the Table restored, A never heard of again, B keeps the partition's clock moving
    restarted = Evaluator(RuleEngine(), TOPICS, table.get, cars=table.keys, partition_for=lambda vin: 0)
    for tick in range(11, 16):
        table.apply(restarted.on_batch([electronics_record(VIN_B, tick, T0 + tick * 1000)], T0).writes)
    stale = restarted.on_timer(T0 + 99_000)
    assert [(vin, a.rule, a.status) for vin, a in stale.alerts] == [(VIN_A, "stale", "raised")]
    # what the first process would have raised had it lived: the same episode, the same alert_id
    first.clock = dict(restarted.clock)
    assert [a.alert_id for _, a in first.on_timer(T0 + 99_000).alerts] == [stale.alerts[0][1].alert_id]
