"""The cold writer's fetch loop, with an in-memory consumer (the archiver's own tests cover the rest)."""

import asyncio

from services.cold.buffer import Triggers
from services.cold.flush import ParquetOptions
from services.cold.settings import ColdSettings
from services.cold.writer import Archiver, ColdWriter
from services.common.settings import KafkaSettings, LakeSettings
from tests.unit.services.cold.support import KINDS, FakePort


class NeverWaits:
    """A consumer whose getmany answers at once, as aiokafka's does while fetched records remain."""

    def __init__(self) -> None:
        self.polls = 0

    async def getmany(self, timeout_ms: int, max_records: int) -> dict:
        self.polls += 1
        if self.polls > 1_000:
            raise RuntimeError("the fetch loop never let the event loop run")
        return {}


async def test_the_fetch_loop_lets_the_event_loop_run_between_polls(tmp_path):
    writer = ColdWriter(ColdSettings(), KafkaSettings(), LakeSettings(dir=tmp_path))
    consumer = NeverWaits()
    triggers = Triggers(rows=100, bytes=10_000_000, span_ms=3_600_000, idle_s=5.0)
    writer._consumer = consumer  # type: ignore[assignment]
    writer._archiver = Archiver(tmp_path, KINDS, triggers, 10**8, ParquetOptions(), FakePort(tmp_path, KINDS))
    loop = asyncio.create_task(writer.wait())
    await asyncio.sleep(0)  # the loop starts, polls, and must hand control back after that poll
    await asyncio.sleep(0)
    try:
        assert not loop.done() and consumer.polls <= 2  # heartbeats, signals, the fetcher get their turn
    finally:
        loop.cancel()
