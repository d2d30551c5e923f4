"""Measure how long a Faust worker with a Table takes to process its first record.

Used by the broker conformance test (it must happen) and by `fleet bench stack` (how fast,
with our group settings beside Faust's defaults).
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
from typing import Any

from services.common import topics
from services.common.kafka import make_admin, make_consumer, start_producer
from services.common.settings import KafkaSettings
from services.stack.processes import die_with_parent

APP = Path(__file__).resolve().parent / "apps" / "table_counter.py"


class CounterWorker:
    """One `table_counter` Faust worker process, output appended to `log`."""

    def __init__(self, env: dict[str, str], log: Path):
        self.log = log
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(APP), "worker", "--without-web", "-l", "info"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent(),  # no orphan worker if the benchmark is killed
            )

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Signal and reap; SIGKILL after 30 s."""
        if self.proc.poll() is None:
            self.proc.send_signal(signum)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def tail(self, chars: int = 3000) -> str:
        """The end of the worker's log, for failure messages."""
        return self.log.read_text(errors="replace")[-chars:]


def counter_env(
    kafka: KafkaSettings, app_id: str, source: str, sink: str, datadir: Path, peer: bool = False
) -> dict[str, str]:
    """Environment for a counter worker."""
    env = {
        **os.environ,
        "FLEET_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "COUNTER_APP_ID": app_id,
        "COUNTER_IN": source,
        "COUNTER_OUT": sink,
        "COUNTER_DATADIR": str(datadir),
    }
    if peer:
        env["COUNTER_GROUP_SETTINGS"] = "faust-defaults"
    return env


async def next_count(consumer: Any, key: str, within_s: float) -> int:
    """The next count the worker emits for `key`."""
    async with asyncio.timeout(within_s):
        while True:
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                for record in records:
                    if json.loads(record.key) == key:
                        return int(json.loads(record.value))


async def measure(
    kafka: KafkaSettings, workdir: Path, tag: str, peer: bool, within_s: float = 240, restart: bool = True
) -> dict[str, float]:
    """Seconds to first processed record: cold start, and (if `restart`) restart after kill -9."""
    source, sink, app_id = f"{tag}-in", f"{tag}-out", f"{tag}-app"
    admin = make_admin(kafka)
    await admin.start()
    try:
        await topics.apply(admin, [topics.TopicSpec(source, 6, 1, {}), topics.TopicSpec(sink, 6, 1, {})])
    finally:
        await admin.close()
    env = counter_env(kafka, app_id, source, sink, workdir / tag, peer)
    out = make_consumer(kafka, sink, group_id=None)
    await out.start()
    producer = await start_producer(kafka)
    worker = CounterWorker(env, workdir / f"{tag}.log")
    try:
        t0 = time.monotonic()
        await producer.send_and_wait(source, b'"x"', key=b'"VIN1"')
        if await next_count(out, "VIN1", within_s) != 1:
            raise AssertionError(worker.tail())
        cold = time.monotonic() - t0
        if not restart:
            return {"cold_s": cold}
        worker.stop(signal.SIGKILL)
        worker = CounterWorker(env, workdir / f"{tag}.log")
        t1 = time.monotonic()
        await producer.send_and_wait(source, b'"x"', key=b'"VIN1"')
        if await next_count(out, "VIN1", within_s) != 2:  # 2: the Table came back from its changelog
            raise AssertionError(worker.tail())
        restart = time.monotonic() - t1
        return {"cold_s": cold, "restart_after_kill_s": restart}
    except TimeoutError:
        raise TimeoutError(
            f"{tag}: no record processed within {within_s:g} s; worker log: {worker.log}"
        ) from None
    finally:
        worker.stop()
        await producer.stop()
        await out.stop()
