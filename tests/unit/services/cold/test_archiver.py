"""The archiver against an in-memory consumer port: triggers, commits, recovery, rebalances."""

import pytest
from aiokafka import TopicPartition

from services.cold import writer as writer_mod
from services.cold.buffer import Triggers
from services.cold.flush import ParquetOptions
from services.cold.writer import Archiver
from tests.unit.services.cold.support import KINDS, FakePort, frames, lake_offsets, records

ENGINE = TopicPartition("telemetry.engine", 0)
CHASSIS = TopicPartition("telemetry.chassis", 4)
TRIGGERS = Triggers(rows=100, bytes=10_000_000, span_ms=3_600_000, idle_s=5.0)


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def _archiver(tmp_path, triggers=TRIGGERS, budget=100_000_000):
    port = FakePort(tmp_path, KINDS)
    clock = Clock()
    arch = Archiver(tmp_path, KINDS, triggers, budget, ParquetOptions(), port, clock=clock)
    return arch, port, clock


async def _flush_due(arch):
    """Queue what is due and wait for the flush worker."""
    arch.flush_due()
    await arch.drain()


def _engine(n, first=0, sub="engine"):
    return records(frames(sub, n), first_offset=first)


def _disk_full_for(monkeypatch, flushes: int) -> None:
    """The next `flushes` flushes fail with ENOSPC; later ones write."""
    real, left = writer_mod.write_flush, [flushes]

    def flaky(*args, **kwargs):
        if left[0]:
            left[0] -= 1
            raise OSError(28, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_mod, "write_flush", flaky)


async def test_rows_trigger_flushes_writes_then_commits(tmp_path):
    arch, port, _ = _archiver(tmp_path)
    await arch.assigned([ENGINE])
    arch.add(ENGINE, _engine(99))
    await _flush_due(arch)
    assert port.commits == []
    arch.add(ENGINE, _engine(1, first=99))
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 100)]  # FakePort checked the lake covered it first
    assert lake_offsets(tmp_path, "engine", ENGINE.topic, 0) == list(range(100))
    assert arch.metrics.flushes["rows"] == 1 and arch.metrics.rows_written == 100
    assert arch.metrics.balanced()


async def test_idle_partition_is_flushed_after_idle_s(tmp_path):
    arch, port, clock = _archiver(tmp_path)
    await arch.assigned([ENGINE, CHASSIS])
    arch.add(ENGINE, _engine(10))
    clock.now += 3
    arch.add(CHASSIS, _engine(5, sub="chassis"))
    clock.now += 2
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 10)]  # chassis has been idle 2 s only
    clock.now += 3
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 10), (CHASSIS, 5)]
    assert arch.metrics.flushes["idle"] == 2


async def test_memory_budget_flushes_the_largest_partition(tmp_path):
    arch, port, _ = _archiver(tmp_path, budget=40_000)
    await arch.assigned([ENGINE, CHASSIS])
    arch.add(CHASSIS, _engine(20, sub="chassis"))
    arch.add(ENGINE, _engine(90))
    assert arch.buffered_bytes() > 40_000
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 90)]
    assert arch.metrics.flushes["memory"] == 1
    assert arch.buffered_bytes() <= 40_000


async def test_the_redelivery_window_counts_in_the_memory_budget(tmp_path):
    port, budget = FakePort(tmp_path, KINDS), 100_000_000
    arch = Archiver(tmp_path, KINDS, TRIGGERS, budget, ParquetOptions(), port, clock=Clock(), dedup_window=50)
    await arch.assigned([ENGINE])
    arch.add(ENGINE, _engine(100))
    await _flush_due(arch)  # rows: written, and the last 50 identities remembered
    assert port.commits == [(ENGINE, 100)]
    window = arch.recent[ENGINE]
    assert len(window) == 50 and window.nbytes > 50 * 8 * 2  # vin, seq and ts of 50 frames
    assert arch.buffered_bytes() == window.nbytes


async def test_assignment_recovers_the_position_from_the_lake_not_the_group(tmp_path):
    arch, port, _ = _archiver(tmp_path)
    await arch.assigned([ENGINE])
    arch.add(ENGINE, _engine(100))
    port.fail_commits = True  # the writer "dies" between rename and commit
    await _flush_due(arch)
    assert port.commits == [] and arch.metrics.commit_failures == 1

    second, port2, _ = _archiver(tmp_path)
    await second.assigned([ENGINE, CHASSIS])
    assert port2.seeks == [(ENGINE, 100)]  # from the file names; chassis has no file: group offset
    assert port2.commits == [(ENGINE, 100)]  # the group catches up with the lake at once
    # the broker still delivers from the old committed offset for a moment: skipped, not duplicated
    second.add(ENGINE, _engine(120))
    assert second.metrics.skipped == 100
    await second.close()
    assert lake_offsets(tmp_path, "engine", ENGINE.topic, 0) == list(range(120))
    assert second.metrics.balanced()


async def test_revocation_flushes_and_commits_then_forgets_the_partition(tmp_path):
    arch, port, _ = _archiver(tmp_path)
    await arch.assigned([ENGINE, CHASSIS])
    arch.add(ENGINE, _engine(10))
    arch.add(CHASSIS, _engine(7, sub="chassis"))
    await arch.revoked([ENGINE])
    assert port.commits == [(ENGINE, 10)]
    assert ENGINE not in arch.buffers and CHASSIS in arch.buffers
    # records of a revoked partition still in flight are dropped: the next owner reads them
    arch.add(ENGINE, _engine(5, first=10))
    assert arch.metrics.dropped == 5
    # the next owner resumes right after the revoked flush
    other, port2, _ = _archiver(tmp_path)
    await other.assigned([ENGINE])
    assert port2.seeks == [(ENGINE, 10)]
    assert arch.metrics.balanced()


async def test_two_owners_in_turn_write_each_offset_once(tmp_path):
    a, _, _ = _archiver(tmp_path)
    b, _, _ = _archiver(tmp_path)
    batch = _engine(300)
    await a.assigned([ENGINE])
    a.add(ENGINE, batch[:130])
    await _flush_due(a)  # rows trigger: 0..129
    a.add(ENGINE, batch[130:170])
    await a.revoked([ENGINE])  # 130..169
    await b.assigned([ENGINE])
    b.add(ENGINE, batch[100:250])  # redelivered from an older committed offset
    await b.revoked([ENGINE])
    await a.assigned([ENGINE])
    a.add(ENGINE, batch[250:])
    await a.close()
    assert lake_offsets(tmp_path, "engine", ENGINE.topic, 0) == list(range(300))


async def test_a_failed_flush_keeps_the_records_pauses_and_retries(tmp_path, monkeypatch):
    arch, port, clock = _archiver(tmp_path)
    await arch.assigned([ENGINE, CHASSIS])
    _disk_full_for(monkeypatch, 1)
    arch.add(ENGINE, _engine(100))
    await _flush_due(arch)
    assert port.commits == [] and port.paused == {ENGINE, CHASSIS}
    assert arch.metrics.flush_errors == 1 and arch.metrics.paused_partitions == 2
    await _flush_due(arch)  # still backing off
    assert port.commits == []
    clock.now += 1.5
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 100)] and port.paused == set()
    assert lake_offsets(tmp_path, "engine", ENGINE.topic, 0) == list(range(100))


async def test_the_fetch_loop_waits_until_the_soonest_idle_deadline_and_no_less_than_a_retry(
    tmp_path, monkeypatch
):
    arch, _, clock = _archiver(tmp_path)  # idle 5 s
    await arch.assigned([ENGINE, CHASSIS])
    assert arch.idle_in_s() is None  # nothing buffered: no deadline
    arch.add(ENGINE, _engine(10))
    clock.now += 2.0
    arch.add(CHASSIS, _engine(10, sub="chassis"))
    assert arch.idle_in_s() == 3.0  # engine's, the older one
    clock.now += 4.0
    assert arch.idle_in_s() == 0.0  # engine is due
    monkeypatch.setattr(writer_mod, "write_flush", _no_space)
    await _flush_due(arch)  # both fail: retry in 1 s
    assert arch.idle_in_s() == 1.0  # due, but not before the retry: no busy loop
    clock.now += 1.0
    assert arch.idle_in_s() == 0.0


async def test_a_partition_the_broker_has_more_of_is_not_idle_only_waiting_for_the_fetcher(tmp_path):
    arch, port, clock = _archiver(tmp_path)  # idle 5 s
    await arch.assigned([ENGINE])
    arch.add(ENGINE, _engine(10))  # offsets 0..9, the broker reports 50
    port.highwaters[ENGINE] = 50
    clock.now += 6.0
    assert arch.idle_in_s() is None  # no idle deadline: the fetch loop keeps its normal poll
    await _flush_due(arch)
    assert port.commits == []  # not written as a file of its own
    arch.add(ENGINE, _engine(40, first=10))  # caught up: 50 of 50
    clock.now += 6.0
    assert arch.idle_in_s() == 0.0
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 50)] and arch.metrics.flushes["idle"] == 1


async def test_while_a_backlog_drains_an_idle_worker_writes_the_largest_quarter_file(tmp_path):
    arch, port, _ = _archiver(tmp_path)  # rows 100: a quarter is 25
    await arch.assigned([ENGINE, CHASSIS])
    port.highwaters.update({ENGINE: 1_000, CHASSIS: 1_000})
    arch.add(CHASSIS, _engine(20, sub="chassis"))
    await _flush_due(arch)
    assert port.commits == []  # 20 < 25: no small file
    arch.add(ENGINE, _engine(30))
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 30)] and arch.metrics.flushes["catch-up"] == 1
    port.highwaters.clear()  # caught up (as far as anyone knows): no catch-up trigger
    arch.add(ENGINE, _engine(30, first=30))
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 30)]


async def test_a_transaction_marker_after_the_last_record_does_not_keep_a_partition_behind(tmp_path):
    arch, port, clock = _archiver(tmp_path)
    await arch.assigned([ENGINE])
    arch.add(ENGINE, _engine(10))  # offsets 0..9; offset 10 is a commit marker, never a record
    port.highwaters[ENGINE] = 11
    clock.now += 6.0
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 10)]


async def test_an_unknown_high_watermark_leaves_the_idle_trigger_as_it_is(tmp_path):
    arch, port, clock = _archiver(tmp_path)
    await arch.assigned([ENGINE])
    arch.add(ENGINE, _engine(10))  # port.highwater(ENGINE) is None
    clock.now += 6.0
    await _flush_due(arch)
    assert port.commits == [(ENGINE, 10)]


def _no_space(*args, **kwargs):
    raise OSError(28, "No space left on device")


async def test_fetching_stays_paused_through_a_failed_retry_resumes_once_one_writes(tmp_path, monkeypatch):
    arch, port, clock = _archiver(tmp_path)
    await arch.assigned([ENGINE, CHASSIS])
    resumes: list[tuple[TopicPartition, ...]] = []
    resume = port.resume
    monkeypatch.setattr(port, "resume", lambda *tps: (resumes.append(tps), resume(*tps)))
    _disk_full_for(monkeypatch, 2)
    arch.add(ENGINE, _engine(100))
    await _flush_due(arch)  # fails: paused, retry in 1 s
    clock.now += 1.5
    await _flush_due(arch)  # the retry fails too: never resumed in between
    assert resumes == [] and port.paused == {ENGINE, CHASSIS} and arch.metrics.flush_errors == 2
    clock.now += 2.5
    await _flush_due(arch)  # this one writes: fetching resumes
    assert port.commits == [(ENGINE, 100)] and port.paused == set() and len(resumes) == 1


async def test_a_failed_flush_on_revocation_drops_the_buffer(tmp_path, monkeypatch):
    arch, port, _ = _archiver(tmp_path)
    await arch.assigned([ENGINE])
    arch.add(ENGINE, _engine(10))

    def broken(*args, **kwargs):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(writer_mod, "write_flush", broken)
    await arch.revoked([ENGINE])
    assert arch.metrics.dropped == 10 and ENGINE not in arch.buffers
    assert port.commits == []
    assert arch.metrics.balanced()


@pytest.mark.parametrize("trigger_rows", [1, 7, 1000])
async def test_metrics_render_every_trigger(tmp_path, trigger_rows):
    arch, _, _ = _archiver(tmp_path, Triggers(trigger_rows, 10_000_000, 3_600_000, 5.0))
    await arch.assigned([ENGINE])
    arch.add(ENGINE, _engine(20))
    await _flush_due(arch)
    await arch.close()
    text = arch.metrics.render()
    assert 'fleet_cold_flushes_total{trigger="rows"}' in text
    assert 'fleet_cold_flushes_total{trigger="shutdown"}' in text
    assert "fleet_cold_rows_written_total 20" in text


async def test_over_budget_with_flushes_in_flight_pauses_fetching_until_they_drain(tmp_path, monkeypatch):
    import threading

    arch, port, _ = _archiver(tmp_path, budget=60_000)
    await arch.assigned([ENGINE, CHASSIS])
    gate = threading.Event()
    real = writer_mod.write_flush

    def slow(*args, **kwargs):
        gate.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(writer_mod, "write_flush", slow)
    arch.add(ENGINE, _engine(100))  # rows trigger
    arch.add(CHASSIS, _engine(100, sub="chassis"))
    arch.flush_due()  # both queued; the disk is slow: still over budget
    assert port.paused == {ENGINE, CHASSIS} and arch.metrics.paused_partitions == 2
    gate.set()
    await arch.drain()
    arch.flush_due()
    assert port.paused == set()
    assert sorted(port.commits) == sorted([(ENGINE, 100), (CHASSIS, 100)])


async def test_a_failed_flush_requeues_later_flushes_of_the_partition_behind_it(tmp_path, monkeypatch):
    arch, port, clock = _archiver(tmp_path)
    await arch.assigned([ENGINE])
    _disk_full_for(monkeypatch, 1)
    batch = _engine(250)
    arch.add(ENGINE, batch[:100])
    arch.flush_due()  # job 1: 0..99
    arch.add(ENGINE, batch[100:200])
    arch.flush_due()  # job 2: 100..199, queued behind job 1
    arch.add(ENGINE, batch[200:])
    await arch.drain()
    assert port.commits == []  # job 2 never ran ahead of the failed job 1
    assert list(arch.buffers[ENGINE].records.offsets) == list(range(250))
    clock.now += 10
    await _flush_due(arch)
    await arch.close()
    assert lake_offsets(tmp_path, "engine", ENGINE.topic, 0) == list(range(250))
    assert arch.metrics.balanced()


async def test_a_bug_in_a_flush_surfaces_at_the_next_poll_without_a_drain(tmp_path, monkeypatch):
    import asyncio

    arch, _, _ = _archiver(tmp_path)
    await arch.assigned([ENGINE])

    def broken(*args, **kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(writer_mod, "write_flush", broken)
    arch.add(ENGINE, _engine(100))
    arch.flush_due()  # the writer's loop does not drain: the worker fails in the background
    for _ in range(100):
        await asyncio.sleep(0.01)
        if arch._worker is not None and arch._worker.done():
            break
    with pytest.raises(RuntimeError, match="bug"):
        arch.flush_due()  # the next poll's flush_due ends the service
