"""In-memory fakes of the bridge's ports (aiokafka's producer, the MQTT source), shared by its tests.

`FakeProducer` models the one aiokafka behaviour the batcher relies on: `send_batch` does not
return while the partition's previous batch is still queued (not yet drained into a request).
Tests drain batches and settle their futures by hand, so every interleaving is explicit.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from services.bridge.batcher import BatchBuilder
from simulators.fleet import Fleet, FleetConfig
from simulators.simulation import encode


class FakeBuilder:
    """aiokafka's BatchBuilder with a byte budget; like aiokafka, the first record always fits."""

    def __init__(self, budget: int):
        self.budget = budget
        self.records: list[tuple[bytes | None, bytes, Any]] = []
        self.used = 0
        self.closed = False

    def append(self, *, timestamp: int | None, key: bytes | None, value: bytes, headers: Any) -> Any:
        size = len(key or b"") + len(value)
        if self.closed or (self.records and self.used + size > self.budget):
            return None
        self.records.append((key, value, headers))
        self.used += size
        return object()  # aiokafka returns record metadata; the batcher only tests for None

    def close(self) -> None:
        self.closed = True

    def record_count(self) -> int:
        return len(self.records)

    @property
    def values(self) -> list[bytes]:
        return [value for _, value, _ in self.records]


@dataclasses.dataclass
class SentBatch:
    """A batch aiokafka accepted: `drained` lets the partition's next batch in, `future` is the ack."""

    topic: str
    partition: int
    builder: FakeBuilder
    future: asyncio.Future[Any]
    drained: asyncio.Event


@dataclasses.dataclass
class SentRecord:
    """One record given to `send()` (dead letters)."""

    topic: str
    value: bytes
    key: bytes | None
    headers: Any
    future: asyncio.Future[Any]


class FakeProducer:
    """The `Producer` port in memory; `auto_drain` lets every batch through at once."""

    def __init__(self, budget: int = 1 << 20, *, auto_drain: bool = False):
        self.budget = budget
        self.auto_drain = auto_drain
        self.batches: list[SentBatch] = []
        self.records: list[SentRecord] = []
        self.entered: list[tuple[str, int]] = []  # send_batch calls as they start
        self.fail_send_batch: BaseException | None = None  # raised by the next send_batch call
        self.fail_send: BaseException | None = None  # raised by the next send call
        self.accepted = asyncio.Event()  # set by every batch aiokafka accepts
        self._calling: set[tuple[str, int]] = set()
        self._last: dict[tuple[str, int], SentBatch] = {}

    def create_batch(self) -> FakeBuilder:
        return FakeBuilder(self.budget)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> asyncio.Future[Any]:
        assert isinstance(batch, FakeBuilder)
        tp = (topic, partition)
        assert tp not in self._calling, f"two send_batch calls at once for {tp}"
        assert batch.closed, "the batcher must close a batch before handing it over"
        self.entered.append(tp)
        self._calling.add(tp)
        try:
            previous = self._last.get(tp)
            if previous is not None:
                await previous.drained.wait()  # aiokafka: add_batch waits for the queued batch to drain
            error, self.fail_send_batch = self.fail_send_batch, None
            if error is not None:
                raise error
            sent = SentBatch(
                topic, partition, batch, asyncio.get_running_loop().create_future(), asyncio.Event()
            )
            if self.auto_drain:
                sent.drained.set()
            self.batches.append(sent)
            self.accepted.set()
            self._last[tp] = sent
            return sent.future
        finally:
            self._calling.discard(tp)

    async def send(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Any = None
    ) -> asyncio.Future[Any]:
        error, self.fail_send = self.fail_send, None
        if error is not None:
            raise error
        sent = SentRecord(topic, value, key, headers, asyncio.get_running_loop().create_future())
        self.records.append(sent)
        return sent.future

    def batch_values(self, topic: str | None = None, partition: int | None = None) -> list[list[bytes]]:
        """The values of every accepted batch (of one topic partition), in hand-over order."""
        return [
            b.builder.values
            for b in self.batches
            if (topic is None or b.topic == topic) and (partition is None or b.partition == partition)
        ]


class FakeSource:
    """The MQTT source as the bridge uses it: acks, pause/resume, connection state."""

    def __init__(self) -> None:
        self.acks: list[tuple[int, int]] = []
        self.paused = False
        self.pauses = 0
        self.resumes = 0
        self.connected = True
        self.connects = 0
        self.paused_at_disconnect: list[bool] = []

    def ack(self, mid: int, qos: int) -> None:
        self.acks.append((mid, qos))

    def pause(self) -> None:
        self.pauses += 1
        self.paused = True

    def resume(self) -> None:
        self.resumes += 1
        self.paused = False

    async def connect(self) -> None:
        self.connects += 1
        self.connected = True

    async def disconnect(self) -> None:
        self.paused_at_disconnect.append(self.paused)
        self.connected = False


async def until(condition: Callable[[], bool], spins: int = 200) -> None:
    """Let the loop run until `condition` holds (no wall-clock waits); fail if it never does."""
    for _ in range(spins):
        if condition():
            return
        await asyncio.sleep(0)
    assert condition(), "condition not reached"


async def spin(times: int = 20) -> None:
    """Let the loop run a while, for asserting that something does *not* happen."""
    for _ in range(times):
        await asyncio.sleep(0)


def fresh_frames(cars: int = 1, ticks: int = 1) -> list[tuple[str, str, bytes]]:
    """(vin, subsystem, payload) of valid frames stamped from now on (the validator checks ts)."""
    fleet = Fleet(FleetConfig(cars=cars, start_ts=int(time.time() * 1000)))
    return [(vin, subsystem, encode(frame)) for _ in range(ticks) for vin, subsystem, frame in fleet.step()]
