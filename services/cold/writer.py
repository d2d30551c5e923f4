"""The cold writer: a consumer group archiving the telemetry and alert topics into the lake.

    writer = ColdWriter(ColdSettings.from_env(), KafkaSettings.from_env(), LakeSettings.from_env())
    await writer.start()    # metrics served, topics checked, group joined
    await writer.wait()     # consume -> buffer per partition -> flush on a trigger -> commit
    await writer.stop()     # flush every buffer, commit, leave the group

Exactly once per offset (a consumer of the lake sees every record of a partition once):

- Offsets are committed only after the files holding them are renamed into place and the
  folders fsynced (services/cold/flush.py), per partition, `last + 1`.
- A partition is flushed as a whole, so the lake holds a contiguous prefix of its offsets.
- On assignment the position comes from the lake, not the group: `max(last) + 1` over the
  partition's file names (after finishing an interrupted journaled flush and deleting
  unfinished temp files); the committed offset (or the earliest one) only when the lake has no
  file of the partition. A crash between a rename and its commit therefore never duplicates
  a row, and the lake may be ahead of the group's committed offset, never behind; the
  recovered position is committed at once, so the group catches up with the lake even when
  nothing more arrives.
- On revocation (`ConsumerRebalanceListener`, before the group rebalances) the revoked
  partitions are flushed and committed; if that flush fails their buffers are dropped, which
  is also safe: the next owner reads them again from the lake's position.

The logic lives in `Archiver`, which talks to Kafka only through the `OffsetPort` protocol
(commit, seek, pause, resume), so unit tests drive it with an in-memory fake.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import gc
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from services.cold.buffer import KafkaRecord, PartitionBuffer, Records, Trigger, Triggers
from services.cold.dedup import RecentFrames
from services.cold.flush import FlushResult, ParquetOptions, recover, warm_up, write_flush
from services.cold.metrics import ColdMetrics
from services.cold.settings import ColdSettings
from services.common import probes
from services.common.kafka import make_consumer, require_topics
from services.common.metrics import MetricsServer
from services.common.settings import KafkaSettings, LakeSettings

log = logging.getLogger(__name__)

POLL_MS = 200  # longest wait in getmany; shorter when a partition's idle deadline comes sooner
MAX_RECORDS = 20_000  # per getmany call
RETRY_S = (1.0, 2.0, 5.0, 10.0)  # backoff after a failed flush


class OffsetPort(Protocol):
    """What the archiver asks of the Kafka consumer (aiokafka's AIOKafkaConsumer has it)."""

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        """Commit the next offset to read per partition."""

    def seek(self, partition: TopicPartition, offset: int) -> None:
        """Read `partition` from `offset` on."""

    def pause(self, *partitions: TopicPartition) -> None:
        """Stop fetching these partitions."""

    def resume(self, *partitions: TopicPartition) -> None:
        """Fetch these partitions again."""

    def highwater(self, partition: TopicPartition) -> int | None:
        """The partition's end offset as the last fetch reported it (None: not known yet)."""


@dataclasses.dataclass
class _Job:
    """One partition's detached buffer on its way into the lake."""

    tp: TopicPartition
    kind: str
    records: Records
    trigger: Trigger


class Archiver:
    """Buffers per partition, flush triggers, recovery on assignment, flush on revocation.

    Flushes run one at a time, in order, on a worker task (the write itself in a thread, so
    heartbeats go on): `flush_due()` detaches due buffers into the worker's queue and
    `drain()` waits for it. `ColdWriter` goes on fetching while the worker writes (measured
    faster than draining after every poll: 8.3-8.5 s against 8.9 s for 500k records, 19.0-20.4 s
    against 21.0-21.6 s for 1.5M, two cores). Queued bytes count against the memory budget; above
    it every partition is paused until the queue drains. A failed flush puts its records and every
    queued job back into their buffers, in offset order (a later flush of a partition must
    never land before an earlier one: the lake must stay a prefix), pauses fetching and retries
    after a backoff.
    """

    def __init__(
        self,
        root: Path,
        kinds: Mapping[str, str],
        triggers: Triggers,
        memory_budget: int,
        options: ParquetOptions,
        port: OffsetPort,
        metrics: ColdMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        dedup_window: int = 0,
    ):
        self.root = root
        self.dedup_window = dedup_window
        self.recent: dict[TopicPartition, RecentFrames] = {}  # per partition, see dedup.py
        self.kinds = dict(kinds)
        self.triggers = triggers
        self.memory_budget = memory_budget
        self.options = options
        self.port = port
        self.metrics = metrics or ColdMetrics()
        self.clock = clock
        self.buffers: dict[TopicPartition, PartitionBuffer] = {}
        self.positions: dict[TopicPartition, int | None] = {}  # next offset expected, when known
        self.paused: set[TopicPartition] = set()
        self._retry_at = 0.0
        self._failures = 0
        self._queue: collections.deque[_Job] = collections.deque()
        self._queued_bytes = 0
        self._wake = asyncio.Event()
        self._drained = asyncio.Event()
        self._drained.set()
        self._worker: asyncio.Task[None] | None = None

    # --- records in --------------------------------------------------------------------------
    def add(self, tp: TopicPartition, records: Sequence[KafkaRecord]) -> None:
        """Buffer records of an owned partition; records below the lake's position are skipped."""
        self.metrics.consumed += len(records)
        buffer = self.buffers.get(tp)
        if buffer is None:  # revoked while these were in flight: the next owner reads them
            self.metrics.dropped += len(records)
            return
        position = self.positions.get(tp)
        if position is not None and records and records[0].offset < position:
            fresh = [r for r in records if r.offset >= position]
            self.metrics.skipped += len(records) - len(fresh)
            records = fresh
        if not records:
            return
        if position is not None and records[0].offset > position:
            log.warning(
                "offsets skipped by the broker (retention?)",
                extra={
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "expected": position,
                    "got": records[0].offset,
                },
            )
        buffer.add(records, self.clock())
        self.positions[tp] = records[-1].offset + 1
        self._gauges()

    # --- flushing ------------------------------------------------------------------------------
    def flush_due(self) -> None:
        """Queue every partition a trigger holds for, then the largest while over budget; pause
        fetching while over budget, resume when back under."""
        self._check_worker()
        now = self.clock()
        if now < self._retry_at:
            return
        for tp, buffer in self.buffers.items():
            trigger = buffer.due(self.triggers, now, caught_up=not self._behind(tp))
            if trigger is not None:
                self._enqueue(tp, buffer, trigger)
        if not self._queue:
            self._catch_up()
        if self.buffered_bytes() > self.memory_budget:
            # Over budget: queue the largest buffers until they hold half the budget at most
            # (large files, not a flush of everything), then pause if the queue is still too big.
            by_size = sorted(self.buffers.items(), key=lambda item: item[1].nbytes, reverse=True)
            held = sum(b.nbytes for b in self.buffers.values())
            for tp, buffer in by_size:
                if held <= self.memory_budget // 2:
                    break
                held -= buffer.nbytes
                self._enqueue(tp, buffer, "memory")
        if self.buffered_bytes() > self.memory_budget:
            self._pause(set(self.buffers) - self.paused, "memory budget")
        else:
            self._resume_if_room()
        self._gauges()

    def _resume_if_room(self) -> None:
        """Fetch the paused partitions again once under budget and no flush is failing (after a
        failure, only when a retry has written: the disk may still be full)."""
        if self.paused and not self._failures and self.buffered_bytes() <= self.memory_budget:
            self.port.resume(*self.paused)
            log.info("resumed fetching", extra={"partitions": len(self.paused)})
            self.paused.clear()

    def idle_in_s(self) -> float | None:
        """Seconds until the soonest idle deadline of a buffered partition (0: due), None: none.

        The fetch loop waits no longer than this, so an idle partition is written at its
        deadline rather than up to a poll later. After a failed flush, not before the retry.
        """
        buffers = self.buffers.items()
        idle_at = [b.idle_at(self.triggers) for tp, b in buffers if len(b) and not self._behind(tp)]
        if not idle_at:
            return None
        now = self.clock()
        return max(0.0, min(idle_at) - now, self._retry_at - now)

    def _catch_up(self) -> None:
        """With the worker idle, write the largest buffer of a partition still behind the broker
        once it holds a quarter of a file (FLUSH_ROWS / 4 rows or FLUSH_BYTES / 4): while a
        backlog drains the write capacity is used as it comes, not left for one long tail when
        everything has been fetched, and files stay large."""
        behind = [(b.nbytes, tp, b) for tp, b in self.buffers.items() if len(b) and self._behind(tp)]
        if not behind:
            return
        _, tp, buffer = max(behind, key=lambda item: item[0])
        if len(buffer) * 4 >= self.triggers.rows or buffer.nbytes * 4 >= self.triggers.bytes:
            self._enqueue(tp, buffer, "catch-up")

    def _behind(self, tp: TopicPartition) -> bool:
        """Whether the broker holds records of `tp` past what was buffered.

        Such a partition is not idle, only waiting for the fetcher: while a backlog drains,
        aiokafka fetches a partition's next chunk only after the previous one was consumed,
        so a partition often gets nothing for a second or two, and an idle trigger would write
        every fetched chunk as a file of its own (~16k rows each, measured on a 2M-record
        backlog). Its size, span and memory triggers still apply.

        One offset short is not behind: a transactional producer leaves a commit marker after
        its last record, an offset no consumer ever receives as a record. (Misjudging a
        partition as caught up only brings back the early flush; the other way round would
        leave it unwritten.)
        """
        high, position = self.port.highwater(tp), self.positions.get(tp)
        return high is not None and position is not None and high - position > 1

    def _enqueue(self, tp: TopicPartition, buffer: PartitionBuffer, trigger: Trigger) -> None:
        if not len(buffer):
            return
        job = _Job(tp, buffer.kind, buffer.take(), trigger)
        self._queue.append(job)
        self._queued_bytes += job.records.nbytes
        self._drained.clear()
        self._wake.set()
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._work())

    async def drain(self) -> None:
        """Wait until every queued flush is done (a worker failure raises here)."""
        while not self._drained.is_set():
            self._check_worker()
            assert self._worker is not None
            drained = asyncio.ensure_future(self._drained.wait())
            try:
                await asyncio.wait({drained, self._worker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                drained.cancel()
        self._check_worker()

    def _check_worker(self) -> None:
        worker = self._worker
        if worker is not None and worker.done():
            self._worker = None
            worker.result()  # a bug in a flush ends the service; the lake recovers on restart

    async def _work(self) -> None:
        while True:
            if not self._queue:
                self._drained.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            job = self._queue[0]
            ok = await self._write(job)
            self._queue.popleft()
            self._queued_bytes -= job.records.nbytes
            if not ok:
                self._requeue(job)
            self._gauges()

    async def _write(self, job: _Job) -> bool:
        tp = job.tp
        started = time.monotonic()
        try:
            recent = self.recent.get(tp)
            result: FlushResult = await asyncio.to_thread(
                write_flush, self.root, tp.topic, tp.partition, job.kind, job.records, self.options, recent
            )
        except OSError as exc:
            self._flush_failed(tp, exc)
            return False
        m = self.metrics
        m.flush_seconds.observe(time.monotonic() - started)
        m.flushes[job.trigger] += 1
        m.files_written += len(result.files)
        m.rows_written += result.rows
        m.rejects_written += result.rejects
        m.duplicates_dropped += result.duplicates
        if recent is not None and result.identities is not None:
            recent.add(result.identities)  # only now: a failed flush archived nothing
        self._failures = 0
        self._resume_if_room()
        log.debug(
            "flushed",
            extra={"topic": tp.topic, "partition": tp.partition, "trigger": job.trigger, "rows": result.rows,
                   "files": len(result.files), "first": result.first, "last": result.last},
        )  # fmt: skip
        await self._commit(tp, result.last + 1)
        return True

    def _requeue(self, failed: _Job) -> None:
        """Put the failed job and every queued one back into their buffers, oldest first."""
        jobs = [failed, *self._queue]
        self._queue.clear()
        self._queued_bytes = 0
        for job in reversed(jobs):  # each restore goes in front of what the buffer holds
            buffer = self.buffers.get(job.tp)
            if buffer is None:  # revoked meanwhile: the next owner reads these again
                self.metrics.dropped += len(job.records)
            else:
                buffer.restore(job.records)

    def _flush_failed(self, tp: TopicPartition, exc: OSError) -> None:
        self.metrics.flush_errors += 1
        delay = RETRY_S[min(self._failures, len(RETRY_S) - 1)]
        self._failures += 1
        self._retry_at = self.clock() + delay
        self._pause(set(self.buffers) - self.paused, "flush failed")
        log.error(
            "flush failed; fetching paused, retrying",
            extra={"topic": tp.topic, "partition": tp.partition, "error": repr(exc), "in_s": delay},
        )

    def _pause(self, tps: set[TopicPartition], why: str) -> None:
        if tps:
            self.port.pause(*tps)
            self.paused |= tps
            log.info("paused fetching", extra={"partitions": len(tps), "why": why})

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        await self._commit_all({tp: offset})

    async def _commit_all(self, offsets: Mapping[TopicPartition, int]) -> None:
        try:
            await self.port.commit(offsets)
            self.metrics.commits += 1
        except KafkaError as exc:
            # The files are in place and the lake is the truth: whoever reads this partition
            # next starts after them. Nothing to undo.
            self.metrics.commit_failures += 1
            log.warning(
                "offset commit failed (the lake keeps the position)",
                extra={"offsets": {f"{tp.topic}/{tp.partition}": o for tp, o in offsets.items()},
                       "error": repr(exc)},
            )  # fmt: skip

    # --- rebalances ------------------------------------------------------------------------------
    async def assigned(self, tps: Iterable[TopicPartition]) -> None:
        """Recover each new partition from the lake, seek there and commit that position.

        The commit matters when a writer died between a rename and its commit and nothing more
        arrives on the partition: without it the group would stay behind the lake for good
        (reported as lag, and every later owner would read the tail again only to skip it).
        """
        recovered: dict[TopicPartition, int] = {}
        for tp in tps:
            if tp in self.buffers:
                continue
            kind = self.kinds.get(tp.topic)
            if kind is None:
                continue
            position = await asyncio.to_thread(recover, self.root, tp.topic, tp.partition, kind)
            if position is not None:
                self.port.seek(tp, position)
                self.metrics.recovered_partitions += 1
                recovered[tp] = position
            self.positions[tp] = position
            self.buffers[tp] = PartitionBuffer(tp.topic, tp.partition, kind)
            if self.dedup_window:
                self.recent[tp] = RecentFrames(self.dedup_window)
            log.info(
                "partition assigned",
                extra={"topic": tp.topic, "partition": tp.partition, "lake_next": position},
            )
        if recovered:
            await self._commit_all(recovered)
        self._gauges()

    async def revoked(self, tps: Iterable[TopicPartition]) -> None:
        """Flush and commit revoked partitions, then forget them (a failed flush drops them:
        safe, the next owner reads them again from the lake's position)."""
        tps = list(tps)
        for tp in tps:
            buffer = self.buffers.pop(tp, None)
            if buffer is not None:
                self._enqueue(tp, buffer, "revoke")
                self.positions.pop(tp, None)
                self.paused.discard(tp)  # the pause ends with the assignment
        await self.drain()
        for tp in tps:
            self.recent.pop(tp, None)
        self._gauges()

    async def close(self) -> None:
        """Flush everything (shutdown) and stop the worker."""
        for tp, buffer in self.buffers.items():
            self._enqueue(tp, buffer, "shutdown")
        try:
            await self.drain()
        finally:
            worker, self._worker = self._worker, None
            if worker is not None and not worker.done():
                worker.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker

    # --- accounting ------------------------------------------------------------------------------
    def buffered_bytes(self) -> int:
        """Memory held by every buffer, every queued flush and the redelivery windows."""
        windows = sum(r.nbytes for r in self.recent.values())
        return sum(b.nbytes for b in self.buffers.values()) + self._queued_bytes + windows

    def _gauges(self) -> None:
        m = self.metrics
        m.buffered = sum(len(b) for b in self.buffers.values()) + sum(len(j.records) for j in self._queue)
        m.buffered_bytes = self.buffered_bytes()
        m.paused_partitions = len(self.paused)
        m.assigned_partitions = len(self.buffers)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]
    """Hands aiokafka's rebalance callbacks to the archiver (awaited before the group moves on)."""

    def __init__(self, archiver: Archiver):
        self.archiver = archiver

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self.archiver.revoked(sorted(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self.archiver.assigned(sorted(assigned))


class ColdWriter:
    """One lake writer process: a member of the cold consumer group."""

    def __init__(self, settings: ColdSettings, kafka: KafkaSettings, lake: LakeSettings):
        self.settings = settings
        self.kafka = kafka
        self.root = lake.dir
        self.metrics = ColdMetrics()
        self.metrics_server = MetricsServer(self.metrics.render, settings.metrics_host, settings.metrics_port)
        self.topics = list(settings.kinds)
        self._consumer: AIOKafkaConsumer | None = None
        self._archiver: Archiver | None = None
        self._stopped = False

    async def start(self) -> None:
        """Serve metrics, check the topics, join the group (warming the flush path meanwhile)."""
        s = self.settings
        options = ParquetOptions(s.compression, s.row_group_rows)
        warming = asyncio.create_task(asyncio.to_thread(warm_up, s.kinds.values(), options))
        try:
            await self._join(options)
        except BaseException:
            await asyncio.gather(warming, return_exceptions=True)  # the start's own error is the one to raise
            raise
        await warming
        gc.freeze()  # what lives as long as the process stays out of full collections' walk
        self.metrics.lag = self._lag
        log.info(
            "cold writer started",
            extra={"group": s.group_id, "lake": str(self.root), "topics": len(self.topics)},
        )

    async def _join(self, options: ParquetOptions) -> None:
        await self.metrics_server.start()
        self.root.mkdir(parents=True, exist_ok=True)
        await probes.kafka_ready(self.kafka)
        await self._check_topics()
        s = self.settings
        consumer = make_consumer(
            self.kafka,
            group_id=s.group_id,
            role="cold",
            max_partition_fetch_bytes=4 * 1024 * 1024,
            fetch_max_bytes=64 * 1024 * 1024,
            session_timeout_ms=s.session_timeout_ms,
            heartbeat_interval_ms=max(100, s.session_timeout_ms // 6),
        )
        triggers = Triggers(s.flush_rows, s.flush_bytes, int(s.flush_span_s * 1000), s.idle_s)
        archiver = Archiver(
            self.root,
            s.kinds,
            triggers,
            s.memory_budget_bytes,
            options,
            consumer,
            self.metrics,
            dedup_window=s.dedup_window,
        )
        consumer.subscribe(self.topics, listener=_Listener(archiver))
        await consumer.start()
        self._consumer, self._archiver = consumer, archiver

    async def wait(self) -> None:
        """Consume, buffer, flush, commit; never returns by itself (a Kafka failure raises)."""
        consumer, archiver = self._consumer, self._archiver
        assert consumer is not None and archiver is not None
        while True:
            idle_in = archiver.idle_in_s()
            wait_ms = POLL_MS if idle_in is None else min(POLL_MS, math.ceil(idle_in * 1000))
            batch = await consumer.getmany(timeout_ms=wait_ms, max_records=MAX_RECORDS)
            for tp, records in batch.items():
                archiver.add(tp, records)
            archiver.flush_due()  # the worker writes while the next poll fetches
            # getmany returns already-fetched records without yielding to the event loop: while a
            # backlog drains, the fetcher's next request, heartbeats, signals and the flush
            # worker's hand-offs would all wait until the fetched records run out.
            await asyncio.sleep(0)

    async def stop(self) -> None:
        """Flush and commit every buffer, leave the group; safe twice."""
        if self._stopped:
            return
        self._stopped = True
        consumer, archiver = self._consumer, self._archiver
        if archiver is not None:
            await archiver.close()
        if consumer is not None:
            with contextlib.suppress(KafkaError):
                await consumer.stop()
        await self.metrics_server.stop()
        m = self.metrics
        log.info(
            "cold writer stopped",
            extra={
                "consumed": m.consumed,
                "rows": m.rows_written,
                "files": m.files_written,
                "commits": m.commits,
            },
        )

    async def _check_topics(self) -> None:
        """Refuse to start on a missing topic (subscribing could auto-create it with the wrong count)."""
        await require_topics(self.kafka, self.topics)

    def _lag(self) -> int:
        consumer, archiver = self._consumer, self._archiver
        if consumer is None or archiver is None:
            return 0
        lag = 0
        for tp, position in list(archiver.positions.items()):
            high: Any = consumer.highwater(tp)
            if high is not None and position is not None:
                lag += max(0, high - position)
        return lag
