"""The Faust wiring of the hot path: one agent over the five telemetry topics, one Table, one timer.

    app = build_app(HotSettings.from_env(), KafkaSettings.from_env())
    faust.Worker(app, loglevel="INFO").execute_from_commandline()      # what `fleet hot` does

The agent is a short loop: decode the record, `RuleEngine.on_frame`, send the alerts, store the
per-VIN state in a changelog-backed Table (key VIN). The five topics are co-partitioned by VIN,
so a car's frames of every subsystem and its state live in the same partition on one worker;
several workers split the partitions.

At-least-once, idempotent output: Faust commits a source offset only after flushing the
producer (alerts and changelog), so a crash replays frames; the engine skips frames at or before
the last one applied (from the restored state) and every alert of an episode carries the same
deterministic `alert_id`, so a replay can re-send a record but never invents a second episode.

Staleness runs on the wall clock, in a timer. Faust lets only an agent write a Table (the
changelog partition is the current event's), so the timer's results live in a small in-memory
overlay that the agent folds into the Table with the car's next frame; a crash before that
makes the timer decide again after the restart, with the same `alert_id`. Silence is measured
against the partition's clock (when its newest processed frame reached the pipeline, the
bridge's `received_ms`), not against now: a worker catching up on a backlog would otherwise find
every car silent, and a partition whose every car stops (the bridge is down) raises nothing.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections import Counter
from typing import Any

import faust

from schemas.catalog import SUBSYSTEMS
from services.common.kafka import faust_broker_settings
from services.common.metrics import MetricsServer, metric_lines
from services.common.settings import KafkaSettings
from services.hot.config import load_rules
from services.hot.engine import RuleEngine
from services.hot.settings import HotSettings

log = logging.getLogger(__name__)


def now_ms() -> int:
    """Wall clock, epoch ms."""
    return int(time.time() * 1000)


class HotMetrics:
    """Counters of one worker, rendered as Prometheus text."""

    def __init__(self) -> None:
        self.frames = 0
        self.skipped = 0  # undecodable records (the bridge never forwards one)
        self.alerts: Counter[str] = Counter()  # by status
        self.state_writes = 0

    def render(self) -> str:
        """Prometheus text exposition."""
        lines = metric_lines("fleet_hot_frames_total", "counter", "frames evaluated", [({}, self.frames)])
        lines += metric_lines(
            "fleet_hot_skipped_total", "counter", "records not decodable", [({}, self.skipped)]
        )
        lines += metric_lines(
            "fleet_hot_alerts_total",
            "counter",
            "alert records sent, by status",
            [({"status": s}, n) for s, n in sorted(self.alerts.items())],
        )
        lines += metric_lines(
            "fleet_hot_state_writes_total",
            "counter",
            "Table writes (changelog records)",
            [({}, self.state_writes)],
        )
        return "\n".join(lines) + "\n"


def _header(headers: Any, name: str) -> bytes | None:
    """A header value from Faust's headers (a list of pairs or a mapping)."""
    if not headers:
        return None
    pairs = headers.items() if isinstance(headers, dict) else headers
    for key, value in pairs:
        if key == name:
            return bytes(value) if value is not None else None
    return None


def build_app(settings: HotSettings, kafka: KafkaSettings) -> faust.App:
    """The Faust app with its agent, Table and timer (not started)."""
    engine = RuleEngine(load_rules(settings.rules if settings.rules.exists() else None))
    app = faust.App(
        settings.app_id,
        **faust_broker_settings(kafka),
        # memory, not rocksdict: measured on Tansu, a rocksdict store asserts on our batched writes
        # (it picks its per-partition database from the current event) and refused to recover
        # ("persisted offset > highwater") against Tansu's under-reported high watermark.
        store="memory://",
        datadir=str(settings.datadir),
        web_enabled=False,
        topic_partitions=settings.partitions,
        topic_allow_declare=True,
        topic_disable_leader=True,
        broker_commit_interval=settings.commit_interval_s,
        producer_linger=0.005,  # changelog records of a batch leave together, not one request each
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
    )
    topic_of = {settings.topic_prefix + s: s for s in SUBSYSTEMS}
    telemetry = app.topic(*topic_of, key_serializer="raw", value_serializer="raw")
    alerts = app.topic(settings.alerts_topic, key_serializer="raw", value_serializer="raw")
    states = app.Table(
        "rule-state",
        default=None,
        partitions=settings.partitions,
        schema=faust.Schema(key_type=str, key_serializer="raw", value_serializer="json"),
    )
    metrics = HotMetrics()
    overlay: dict[str, Any] = {}  # vin -> state the timer changed since the car's last frame
    partition_of: dict[str, int] = {}  # vin -> its partition, for the timer's liveness check
    newest_received: dict[int, int] = {}  # partition -> newest received_ms seen

    @app.agent(telemetry)
    async def evaluate(stream: faust.StreamT[bytes]) -> None:
        # Batches, not single events: a car's five frames of a tick arrive together, so its
        # state is written (one changelog record) once per batch instead of once per frame.
        batches = stream.take_events(settings.batch_max, within=settings.batch_within_s)  # type: ignore[attr-defined]
        async for events in batches:
            touched: dict[str, tuple[int, Any]] = {}  # vin -> (partition, newest state)
            for event in events:
                message = event.message
                try:
                    vin = message.key.decode()
                    frame = json.loads(event.value)
                except (AttributeError, UnicodeDecodeError, ValueError):
                    metrics.skipped += 1
                    continue
                received = _header(message.headers, "received_ms")
                received_ms = int(received) if received and received.isdigit() else None
                partition_of[vin] = message.partition
                if received_ms is not None and received_ms > newest_received.get(message.partition, 0):
                    newest_received[message.partition] = received_ms
                if vin in touched:
                    state = touched[vin][1]
                else:
                    state = overlay.pop(vin, None) or states.get(vin)
                new, raised = engine.on_frame(
                    vin, topic_of[message.topic], frame, state, now_ms(), received_ms=received_ms
                )
                metrics.frames += 1
                for alert in raised:  # sent before the state that remembers it (see engine.py)
                    await alerts.send(key=vin.encode(), value=alert.to_json())
                    metrics.alerts[alert.status] += 1
                if new is not state or vin not in touched:
                    touched[vin] = (message.partition, new)
            for vin, (partition, new) in touched.items():
                if new is states.get(vin):
                    continue
                # What `states[vin] = new` does, with the car's own partition: inside a batch the
                # "current event" Faust would take the changelog partition from is another car's.
                states.data[vin] = new
                states.send_changelog(partition, vin, new)
                metrics.state_writes += 1

    @app.timer(interval=settings.timer_s)  # type: ignore[untyped-decorator]
    async def staleness() -> None:
        for vin, partition in list(partition_of.items()):
            # The partition's clock: when its newest processed frame reached the pipeline. A car is
            # silent when its partition moved on without it; measured on the wall clock instead,
            # a worker running a few seconds behind would find every car silent.
            clock = newest_received.get(partition)
            if clock is None:
                continue
            state = overlay.get(vin) or states.get(vin)
            new, raised = engine.on_timer(vin, state, clock)
            for alert in raised:
                alert = dataclasses.replace(alert, detected_at=now_ms())
                await alerts.send(key=vin.encode(), value=alert.to_json())
                metrics.alerts[alert.status] += 1
            if new is not state and new is not None:
                overlay[vin] = new

    server = MetricsServer(metrics.render, settings.metrics_host, settings.metrics_port)

    @app.task  # type: ignore[untyped-decorator]
    async def serve_metrics() -> None:
        await server.start()

    app.hot_metrics = metrics  # type: ignore[attr-defined]  # for tests and `fleet status`
    return app
