"""Faust on the Kafka-protocol broker: a worker with a Table becomes ready, processes, and
recovers its Table from the changelog after a kill -9.

The hot path (issue 5) stands on exactly this. Group timings come from
services.common.kafka.FAUST_GROUP_SETTINGS; `fleet bench stack` measures the join time.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services.common import topics
from services.common.kafka import make_consumer, start_producer

APP = Path(__file__).parent / "apps" / "table_counter.py"


class Worker:
    """One Faust worker process; output in a file."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        with open(log, "a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(APP), "worker", "--without-web", "-l", "info"], env=env, stdout=out, stderr=subprocess.STDOUT
            )

    def stop(self, signum: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def next_count(consumer, key: str, within_s: float) -> int:
    async with asyncio.timeout(within_s):
        while True:
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                for record in records:
                    if json.loads(record.key) == key:
                        return int(json.loads(record.value))


async def test_faust_worker_with_table_becomes_ready_and_recovers_after_kill(kafka, admin, names, tmp_path):
    source, sink = names("in"), names("out")
    await topics.apply(admin, [topics.TopicSpec(source, 6, 1, {}), topics.TopicSpec(sink, 6, 1, {})])
    env = {
        **os.environ,
        "FLEET_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "COUNTER_APP_ID": names("app"),
        "COUNTER_IN": source,
        "COUNTER_OUT": sink,
        "COUNTER_DATADIR": str(tmp_path / "data"),
    }
    out = make_consumer(kafka, sink, group_id=None)
    await out.start()
    producer = await start_producer(kafka)
    log = tmp_path / "worker.log"
    worker = Worker(env, log)
    try:
        started = time.monotonic()
        await producer.send_and_wait(source, b'"x"', key=b'"VIN1"')
        assert await next_count(out, "VIN1", within_s=90) == 1, log.read_text()[-3000:]
        first_ready_s = time.monotonic() - started
        await producer.send_and_wait(source, b'"x"', key=b'"VIN1"')
        assert await next_count(out, "VIN1", within_s=30) == 2

        worker.stop(signal.SIGKILL)
        worker = Worker(env, log)
        restarted = time.monotonic()
        await producer.send_and_wait(source, b'"x"', key=b'"VIN1"')
        # 3, not 1: the Table came back from its changelog topic on the broker
        assert await next_count(out, "VIN1", within_s=90) == 3, log.read_text()[-3000:]
        restart_ready_s = time.monotonic() - restarted
        print(f"faust first record after start {first_ready_s:.1f}s, after kill -9 restart {restart_ready_s:.1f}s")
    finally:
        worker.stop()
        await producer.stop()
        await out.stop()
