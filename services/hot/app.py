"""The Faust wiring of the hot path: the five telemetry topics, one Table, one timer.

    app = build_app(HotSettings.from_env(), KafkaSettings.from_env())
    faust.Worker(app, loglevel="INFO").execute_from_commandline()      # what `fleet hot` does

The consumer (services/hot/consumer.py) hands each fetch of records to `evaluate`, which passes
them to the Evaluator (services/hot/evaluator.py: the logic, testable without Faust), sends the
alerts and writes each touched car's state to a changelog-backed Table (key VIN). The five
topics are co-partitioned by VIN, so a car's frames of every subsystem and its state live in one
partition on one worker; workers split partitions.

At-least-once, idempotent output: Faust commits a source offset only after flushing the
producer (alerts and changelog), so a crash replays frames; the engine skips frames at or before
the last one applied (from the restored state) and every alert of an episode carries the same
deterministic `alert_id`, so a replay can re-send a record but never invents a second episode.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Awaitable
from typing import Any

import faust

from schemas.catalog import SUBSYSTEMS
from services.common.kafka import faust_broker_settings
from services.common.metrics import MetricsServer, metric_lines
from services.common.partitioning import partition_for
from services.common.settings import KafkaSettings
from services.hot.config import DEFAULT_RULES_PATH, load_rules
from services.hot.consumer import HotApp
from services.hot.engine import RuleEngine
from services.hot.evaluator import Evaluator, Outcome, Record
from services.hot.rules import State
from services.hot.settings import HotSettings

log = logging.getLogger(__name__)


def now_ms() -> int:
    """Wall clock, epoch ms."""
    return int(time.time() * 1000)


class StateWriter:
    """Each car's newest state: in the Table at once, in its changelog once per commit.

    The consumer awaits `flush` before every offset commit and holds back the acks of batches
    evaluated meanwhile until the commit is done (services/hot/consumer.py), so every state a
    committed frame produced is acknowledged in the changelog before the commit, while a car's
    many changes between two commits (about one per fetch at low latency) cost one changelog
    record instead of one each. Alerts are sent at once but acknowledged here too, before any
    state that remembers them is written: a state that reached the changelog without its alert
    would never raise it again. Waiting for the acks also bounds memory: a slow broker slows the
    commits, not a queue that grows. A crash loses both the unsent states and the uncommitted
    offsets: the frames replay onto the restored state.
    """

    def __init__(self, table: Any):
        self.table = table
        self.dirty: dict[str, int] = {}  # vin -> its partition (the changelog partition)
        self.alerts: list[Awaitable[Any]] = []  # alerts sent since the last flush (ack futures)
        self.sent = 0

    def put(self, vin: str, partition: int, state: State) -> None:
        """What `table[vin] = state` does, minus the changelog record (see `flush`)."""
        self.table.data[vin] = state
        self.dirty[vin] = partition

    async def flush(self) -> None:
        """Wait for the alerts sent so far, then write one changelog record per car changed since
        the last flush and wait for those acks too."""
        alerts, self.alerts = self.alerts, []
        dirty, self.dirty = self.dirty, {}
        if alerts:
            await asyncio.gather(*alerts)
        sent = [self.table.send_changelog(p, vin, self.table.data[vin]) for vin, p in dirty.items()]
        self.sent += len(sent)
        if sent:
            await asyncio.gather(*sent)


class HotMetrics:
    """Counters of one worker (kept by its Evaluator and StateWriter), rendered as Prometheus text."""

    def __init__(self, evaluator: Evaluator, writer: StateWriter):
        self.evaluator = evaluator
        self.writer = writer

    def render(self) -> str:
        """Prometheus text exposition."""
        e = self.evaluator
        lines = metric_lines("fleet_hot_frames_total", "counter", "frames evaluated", [({}, e.frames)])
        lines += metric_lines(
            "fleet_hot_skipped_total", "counter", "records not decodable", [({}, e.skipped)]
        )
        lines += metric_lines(
            "fleet_hot_alerts_total",
            "counter",
            "alert records sent, by status",
            [({"status": s}, n) for s, n in sorted(e.sent.items())],
        )
        lines += metric_lines(
            "fleet_hot_state_writes_total", "counter", "car states changed (Table writes)", [({}, e.writes)]
        )
        lines += metric_lines(
            "fleet_hot_changelog_records_total",
            "counter",
            "state records sent to the changelog (one per changed car per commit)",
            [({}, self.writer.sent)],
        )
        return "\n".join(lines) + "\n"


def build_app(settings: HotSettings, kafka: KafkaSettings) -> faust.App:
    """The Faust app with its batch handler, Table and timer (not started)."""
    # The shipped rules file is optional (the defaults live in code); a file the user names is not.
    missing_default = settings.rules == DEFAULT_RULES_PATH and not settings.rules.exists()
    engine = RuleEngine(load_rules(None if missing_default else settings.rules))
    app = HotApp(
        settings.app_id,
        **faust_broker_settings(kafka),
        # memory, not rocksdict: measured on Tansu, a rocksdict store asserts on our batched writes
        # (it picks its per-partition database from the current event) and refused to recover
        # ("persisted offset > highwater") against Tansu's under-reported high watermark.
        store="memory://",
        datadir=str(settings.datadir),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        topic_allow_declare=True,
        topic_disable_leader=True,
        broker_commit_interval=settings.commit_interval_s,
        producer_linger=0.005,  # changelog records of a commit leave together, not one request each
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        broker_max_poll_records=settings.batch_max,  # the largest batch `evaluate` gets
    )
    topic_of = {settings.topic_prefix + s: s for s in SUBSYSTEMS}
    # Subscribed, not streamed: the consumer hands their records to `evaluate` a fetch at a time.
    app.topics.add(app.topic(*topic_of, key_serializer="raw", value_serializer="raw"))
    app.batch_topics = frozenset(topic_of)
    app.kafka_settings = kafka  # recovery reads the changelogs to their exact end (consumer.py)
    alerts = app.topic(settings.alerts_topic, key_serializer="raw", value_serializer="raw")
    states = app.Table(
        "rule-state",
        default=None,
        partitions=settings.partitions,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
    )
    evaluator = Evaluator(
        engine,
        topic_of,
        states.get,
        cars=lambda: list(states.data.keys()),
        # the bridge keys records by VIN with Kafka's default partitioner; the Table is co-partitioned
        partition_for=lambda vin: partition_for(vin.encode(), settings.partitions),
    )
    writer = StateWriter(states)
    metrics = HotMetrics(evaluator, writer)

    async def publish(out: Outcome) -> None:
        # Not waiting for the alerts' acks here keeps the next fetch from queueing behind them;
        # the writer waits for them before it writes the states that remember them.
        for vin, alert in out.alerts:
            writer.alerts.append(await alerts.send(key=vin.encode(), value=alert.to_json()))
        for vin, (partition, state) in out.writes.items():
            writer.put(vin, partition, state)

    async def evaluate(records: list[Record]) -> None:
        await publish(evaluator.on_batch(records, now_ms()))

    app.on_records = evaluate
    app.before_commit = writer.flush

    @app.timer(interval=settings.timer_s)  # type: ignore[untyped-decorator]
    async def staleness() -> None:
        await publish(evaluator.on_timer(now_ms()))

    server = MetricsServer(metrics.render, settings.metrics_host, settings.metrics_port)

    @app.task  # type: ignore[untyped-decorator]
    async def on_started() -> None:
        # What is alive now (Faust, the rules, imported modules) lives as long as the worker: out of
        # the collector's sight, a full collection no longer walks it. Measured at 5,000 frames/s:
        # full collections paused the loop 60-80 ms a few times in 30 s, the alert latency's tail.
        gc.freeze()
        await server.start()

    app.hot_metrics = metrics  # type: ignore[attr-defined]  # for tests and `fleet status`
    return app
