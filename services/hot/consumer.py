"""Faust's Kafka consumer with one change: the telemetry topics reach the hot path a fetch at a time.

    app = HotApp("fleet-hot", broker="kafka://...")
    app.batch_topics = frozenset({"telemetry.engine", ...})
    app.on_records = handler            # async (records: list[Record]) -> None

Faust hands every record to the conductor, a channel queue and a stream, each step a task or
a future: about 17 event-loop callbacks and ~200 us per frame, measured here at 4.5k frames/s
with an agent taking batches (`take_events`) — a fifth of the hot path's goal. Everything else
Faust does stays: the worker, group membership and the co-partitioning assignor, the Table with
its changelog and recovery, offset bookkeeping and commits, the producer, timers.

What is overridden is `Consumer._drain_messages`, the loop that turns fetched records into
callbacks. Records of `batch_topics` are collected per fetch into `Record`s and passed to
`on_records` in one call; once it returns (its alerts acknowledged), their offsets are acked the
way `Consumer.ack` does. Before each commit the app's `before_commit` writes the state those
frames produced and waits for the acknowledgements (Faust's own producer flush gives up after
0.1 s without progress, so it cannot be relied on for that), then Faust commits: at-least-once,
as with an agent. Records of other topics (the Table's changelog during recovery) take
Faust's own per-message path unchanged. While a batch is being evaluated `wait_empty` (called
when partitions are revoked, before the last commit) waits for it, so a revoked partition's
frames are either committed after their state was written or replayed by the next owner.

Written against faust-streaming 0.15.3 (pinned); tests/integration/test_hot.py covers rebalances
(two workers), kill -9 and recovery through this path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from time import monotonic
from typing import Any, cast

import faust
from faust.transport.drivers import aiokafka as faust_aiokafka

from services.common.kafka import LIVE_FETCH_WAIT_MS, exact_end_offsets
from services.common.settings import KafkaSettings
from services.hot.evaluator import Record

RecordsHandler = Callable[[list[Record]], Awaitable[None]]


class LiveFetchConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread with a short fetch wait instead of its fixed 1,500 ms.

    Tansu answers a waiting fetch only when the wait ends (pinned in test_conformance_kafka.py):
    measured at 5,000 frames/s, fetches sent in a lull slept ~830 ms and alerts came p50 555 ms,
    p99 1.4 s late. aiokafka reads the setting from this attribute when the consumer starts.
    """

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._fetch_max_wait_ms = LIVE_FETCH_WAIT_MS
        return consumer


class BatchConsumer(faust_aiokafka.Consumer):
    """Faust's aiokafka consumer delivering the app's batch topics a fetch at a time."""

    _batch_done: asyncio.Event | None = None
    _commit_lock: asyncio.Lock | None = None  # a commit and a batch's acks never interleave
    _deferred: list[tuple[dict[Any, range], int]]  # acks of batches evaluated during a commit

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deferred = []

    def _new_consumer_thread(self) -> LiveFetchConsumerThread:
        return LiveFetchConsumerThread(self, loop=self.loop, beacon=self.beacon)

    async def highwaters(self, *partitions: Any) -> Any:
        """End offsets for Faust's changelog recovery, counting every record of the last batch.

        Recovery reads a changelog up to this; Tansu's end offset stops inside the last record
        batch, and a worker restored that way raised an episode twice after kill -9.
        """
        return await exact_end_offsets(cast(HotApp, self.app).kafka_settings, partitions)

    async def _drain_messages(self, fetcher: Any) -> None:
        app = cast(HotApp, self.app)
        batch_topics = app.batch_topics
        per_message = self.callback
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set
        read_offset = self._read_offset
        self._batch_done = asyncio.Event()
        self._batch_done.set()
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                records, active = await self._wait_next_records(1.0)
                await asyncio.sleep(0)  # a fetch can return at once, forever: let the loop breathe
                if not records or self.should_stop:
                    continue
                if not self.flow_active:
                    await self.perform_seek()  # a rebalance began: drop the fetch, refetch later
                    continue
                generation = app.consumer_generation_id
                batch: list[Record] = []
                offsets: dict[Any, range] = {}
                others: list[tuple[Any, Any]] = []
                for tp, tp_records in records.items():
                    if active is not None and tp not in active and tp not in self._buffered_partitions:
                        continue
                    self.app.monitor.track_tp_end_offset(tp, self.highwater(tp))
                    if tp.topic not in batch_topics:
                        others += [(tp, r) for r in tp_records]
                        continue
                    last = read_offset[tp]
                    fresh = [r for r in tp_records if last is None or r.offset >= last]
                    if not fresh:
                        continue
                    batch += [Record(r.topic, r.partition, r.key, r.value, r.headers) for r in fresh]
                    # Offsets between the last read and this fetch's end that hold no record (markers,
                    # compaction) are acked too, as Faust's gap bookkeeping does.
                    start = last + 1 if last is not None and fresh[0].offset - last > 1 else fresh[0].offset
                    offsets[tp] = range(start, fresh[-1].offset + 1)
                    read_offset[tp] = fresh[-1].offset
                for tp, record in others:  # Faust's path: the changelog while a Table recovers
                    message = self._to_message(tp, record)
                    await self.wait_first(per_message(message), self.suspend_flow.wait())
                    read_offset[tp] = record.offset
                if batch:
                    inbound = monotonic()  # what Faust's stream sensor records, for its stall checks
                    for tp in offsets:
                        self.app.monitor.stream_inbound_time[tp] = inbound
                    await self._evaluate(app, batch, offsets, generation)
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
        except asyncio.CancelledError:
            if not self.transport.app.should_stop:
                raise

    async def _evaluate(
        self, app: HotApp, batch: list[Record], offsets: dict[Any, range], generation: int
    ) -> None:
        assert self._batch_done is not None
        self._batch_done.clear()
        try:
            await app.on_records(batch)
            if self._lock().locked():  # a commit is writing state: ack once it is done, don't wait
                self._deferred.append((offsets, generation))
            else:
                self._ack_offsets(offsets, generation)
        finally:
            self._batch_done.set()
        if self._commit_every is not None and self._n_acked >= self._commit_every:
            self._n_acked = 0
            await self.commit()

    def _ack_offsets(self, offsets: dict[Any, range], generation: int) -> None:
        """What `Consumer.ack` records for each message, for a fetch's offset ranges at once."""
        if cast(HotApp, self.app).consumer_generation_id != generation:
            return  # a batch from before a rebalance is not acked: its partitions' next owner replays it
        for tp, tp_offsets in offsets.items():
            committed = self._committed_offset[tp]
            index = self._acked_index[tp]
            new = [o for o in tp_offsets if (committed is None or o >= committed) and o not in index]
            index.update(new)
            self._acked[tp].extend(new)
            self._n_acked += len(new)

    def _lock(self) -> asyncio.Lock:
        if self._commit_lock is None:
            self._commit_lock = asyncio.Lock()
        return self._commit_lock

    async def commit(self, *args: Any, **kwargs: Any) -> bool:
        """Faust's commit, once the state its acked frames produced is in the changelog.

        `before_commit` writes (and waits for) the app's pending state records first. Batches
        evaluated meanwhile keep going (an alert is not held up by a commit) but ack their offsets
        only after it: a frame acked now would be committed with its state unwritten.
        """
        async with self._lock():
            await cast(HotApp, self.app).before_commit()
            committed = bool(await super().commit(*args, **kwargs))
            deferred, self._deferred = self._deferred, []
            for offsets, generation in deferred:  # evaluated meanwhile: their state goes next time
                self._ack_offsets(offsets, generation)
            return committed

    async def wait_empty(self) -> None:
        """Partitions are being revoked: let the batch in evaluation finish, then Faust's own wait."""
        if self._batch_done is not None:
            await self._batch_done.wait()
        await super().wait_empty()


class BatchTransport(faust_aiokafka.Transport):
    """The aiokafka transport with the batch consumer."""

    Consumer = BatchConsumer


async def _no_handler(records: list[Record]) -> None:
    raise RuntimeError("HotApp.on_records is not set")


async def _nothing() -> None:
    pass


class HotApp(faust.App):
    """A Faust app whose consumer hands `batch_topics` to `on_records` a fetch at a time.

    `before_commit` runs before every offset commit, with no batch acking meanwhile: the app
    writes there, acknowledged, what the commit must cover.
    """

    batch_topics: frozenset[str] = frozenset()
    kafka_settings: KafkaSettings = KafkaSettings()
    on_records: RecordsHandler = staticmethod(_no_handler)
    before_commit: Callable[[], Awaitable[None]] = staticmethod(_nothing)

    def _new_transport(self) -> Any:
        return BatchTransport(self.conf.broker_consumer, self)
