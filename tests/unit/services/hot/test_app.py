"""The Faust wiring of the hot path without a broker: a fetch in, alerts and Table writes out.

The producer is an in-memory fake of the two calls the app makes through Faust: `send` (alerts)
and `send_soon` (the Table's changelog). The broker-backed wiring (group, commits, recovery,
rebalances) is tests/integration/test_hot.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from services.common.settings import KafkaSettings
from services.hot.app import build_app
from services.hot.consumer import HotApp
from services.hot.evaluator import Record
from services.hot.settings import HotSettings

VIN = "1FLEET00000000007"
T0 = 1_795_000_000_000


class FakeBuffer:
    size = 0

    async def flush(self) -> None:
        pass


class FakeProducer:
    """What Faust's topics call on the app's producer."""

    def __init__(self):
        self.sent: list[tuple[str, bytes, bytes, int | None]] = []
        self.soon: list = []
        self.buffer = FakeBuffer()

    async def maybe_start(self) -> None:
        pass

    async def send(self, topic, key, value, partition, timestamp, headers, **_):
        self.sent.append((topic, key, value, partition))
        acked = asyncio.get_running_loop().create_future()
        acked.set_result(None)  # acknowledged at once
        return acked

    def send_soon(self, fut) -> None:
        self.soon.append(fut.message)
        fut.set_result(None)  # acknowledged at once


def record(tick: int, partition: int, **signals) -> Record:
    frame = {"vin": VIN, "ts": T0 + tick * 1000, "seq": tick, "schema_version": 1, **signals}
    headers = [("received_ms", str(T0 + tick * 1000).encode())]
    return Record("telemetry.electronics", partition, VIN.encode(), json.dumps(frame).encode(), headers)


@pytest.fixture
def app(tmp_path):
    settings = HotSettings(datadir=tmp_path, metrics_port=0)
    built = build_app(settings, KafkaSettings())
    built.producer = FakeProducer()
    return built


def test_the_app_subscribes_the_five_telemetry_topics_as_batch_topics(app):
    assert isinstance(app, HotApp)
    assert app.batch_topics == {
        f"telemetry.{s}" for s in ("engine", "transmission", "electronics", "chassis", "infotainment")
    }


async def test_a_fetch_sends_its_alert_keyed_by_vin_and_writes_the_cars_state_once(app):
    fetch = [
        record(1, 4, ignition="ON", dtc_list=[]),
        record(2, 4, ignition="ON", dtc_list=["P0217"]),
        record(3, 4, ignition="ON", dtc_list=["P0217"]),
    ]
    await app.on_records(fetch)
    producer = app.producer
    [(topic, key, value, _)] = producer.sent
    alert = json.loads(value)
    assert (topic, key) == ("alerts.health", VIN.encode())
    assert (alert["rule"], alert["status"], alert["severity"], alert["value"]) == (
        "dtc_new",
        "raised",
        "critical",
        "P0217",
    )
    assert producer.soon == []  # the state reaches the changelog before the next commit, not now
    await app.on_records([record(4, 4, ignition="ON", dtc_list=["P0217"])])
    await app.before_commit()  # what the consumer calls first in every commit
    [write] = producer.soon  # one changelog record for the car (not one per fetch), its partition
    assert write.channel.get_topic_name() == "fleet-hot-rule-state-changelog"
    assert (json.loads(write.key), write.partition) == (VIN, 4)  # the Table's keys are JSON
    assert json.loads(write.value)["seen"]["electronics"] == [T0 + 4000, 4]
    assert app.hot_metrics.evaluator.frames == 4
    await app.before_commit()
    assert len(producer.soon) == 1  # nothing changed since: nothing more to write


async def test_a_redelivered_fetch_sends_nothing_more(app):
    fetch = [record(1, 0, ignition="ON", dtc_list=["P0300"])]
    await app.on_records(fetch)
    await app.before_commit()
    await app.on_records(fetch)  # what a replay after a crash delivers again
    await app.before_commit()
    assert [json.loads(v)["status"] for _, _, v, _ in app.producer.sent] == ["raised"]
    assert len(app.producer.soon) == 1
