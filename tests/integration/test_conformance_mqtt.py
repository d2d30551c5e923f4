"""MQTT conformance: a persistent session at QoS1 gets what it missed while away.

This is what the bridge's "no loss" rests on. 5,000 messages is five times Mosquitto's
default per-client queue (1,000, beyond which it silently drops): passing shows
infra/mosquitto/dev.conf's deliberate `max_queued_messages` is in force.
"""

from __future__ import annotations

import threading
import time

import pytest

from services.common.mqtt import connect, make_client

MISSED = 5000


class Collector:
    """Subscriber callbacks that record payloads and signal connection events."""

    def __init__(self):
        self.payloads: list[bytes] = []
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self.session_present: bool | None = None
        self.lock = threading.Lock()

    def on_connect(self, client, userdata, flags, reason_code, properties):
        self.session_present = flags.session_present
        self.connected.set()

    def on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self.subscribed.set()

    def on_message(self, client, userdata, message):
        with self.lock:
            self.payloads.append(message.payload)


def start_subscriber(mqtt, client_id, topic, *, v5, subscribe):
    collector = Collector()
    client = make_client(mqtt, client_id, persistent=True, v5=v5)
    client.on_connect = collector.on_connect
    client.on_subscribe = collector.on_subscribe
    client.on_message = collector.on_message
    connect(client, mqtt, persistent=True)
    client.loop_start()
    assert collector.connected.wait(10)
    if subscribe:
        client.subscribe(topic, qos=1)
        assert collector.subscribed.wait(10)
    return client, collector


def publish_qos1(mqtt, client_id, topic, count):
    client = make_client(mqtt, client_id)
    client.max_inflight_messages_set(1000)
    connect(client, mqtt)
    client.loop_start()
    try:
        infos = [client.publish(topic, f"{i}".encode(), qos=1) for i in range(count)]
        for info in infos:
            info.wait_for_publish(timeout=30)
            assert info.is_published()
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.mark.parametrize("v5", [True, False], ids=["mqtt5", "mqtt311"])
def test_persistent_session_redelivers_everything_missed_while_offline(mqtt, names, v5):
    topic = f"fleet/{names('vin')}/engine"
    sub_id = names("bridge")
    client, _ = start_subscriber(mqtt, sub_id, topic, v5=v5, subscribe=True)
    client.disconnect()
    client.loop_stop()

    publish_qos1(mqtt, names("car"), topic, MISSED)

    client, collector = start_subscriber(mqtt, sub_id, topic, v5=v5, subscribe=False)
    try:
        assert collector.session_present is True
        deadline = time.monotonic() + 60
        while len(collector.payloads) < MISSED and time.monotonic() < deadline:
            time.sleep(0.05)
        with collector.lock:
            received = [int(p) for p in collector.payloads]
        assert received == list(range(MISSED))  # all of them, once each, in publish order
    finally:
        client.disconnect()
        client.loop_stop()


def test_clean_session_gets_nothing_queued(mqtt, names):
    """The contrast: a non-persistent subscriber's messages are gone once it disconnects."""
    topic = f"fleet/{names('vin')}/engine"
    sub_id = names("viewer")
    collector = Collector()
    client = make_client(mqtt, sub_id)
    client.on_connect = collector.on_connect
    client.on_subscribe = collector.on_subscribe
    connect(client, mqtt)
    client.loop_start()
    assert collector.connected.wait(10)
    client.subscribe(topic, qos=1)
    assert collector.subscribed.wait(10)
    client.disconnect()
    client.loop_stop()

    publish_qos1(mqtt, names("car"), topic, 10)

    client, again = start_subscriber(mqtt, sub_id, topic, v5=True, subscribe=False)
    try:
        time.sleep(1.0)  # give any (wrongly) queued message time to arrive
        assert again.session_present is False
        assert again.payloads == []
    finally:
        client.disconnect()
        client.loop_stop()
