"""The naive peer of `fleet bench bridge`: the pattern of published Python MQTT -> Kafka bridges.

paho's network thread calls `on_message`; it parses the JSON, produces one record and waits for
Kafka to acknowledge it (one synchronous produce per message); paho acks the QoS1 message when
`on_message` returns. It does not lose messages on a crash mid-produce (the ack comes after the
produce), which makes it the fair "safe but simple" baseline: its cost is one Kafka round trip
per message. Same broker settings as ours: MQTT 3.1.1 persistent session, QoS1, acks=all.

    python -m bench.apps.naive_bridge <client_id> <topic_prefix>
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading

import paho.mqtt.client as mqtt

from services.common.kafka import start_producer
from services.common.mqtt import connect, make_client
from services.common.settings import KafkaSettings, MqttSettings


def main() -> None:
    """Run until SIGTERM."""
    client_id, prefix = sys.argv[1], sys.argv[2]
    kafka, mqtt_settings = KafkaSettings.from_env(), MqttSettings.from_env()
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    producer = asyncio.run_coroutine_threadsafe(start_producer(kafka, role="naive"), loop).result()

    def on_message(_c: mqtt.Client, _u: object, message: mqtt.MQTTMessage) -> None:
        frame = json.loads(message.payload)
        subsystem = message.topic.rsplit("/", 1)[-1]
        send = producer.send_and_wait(prefix + subsystem, message.payload, key=frame["vin"].encode())
        asyncio.run_coroutine_threadsafe(send, loop).result()

    client = make_client(mqtt_settings, client_id, persistent=True, v5=False)
    client.on_connect = lambda c, *_: c.subscribe("fleet/#", qos=1)
    client.on_message = on_message
    connect(client, mqtt_settings, persistent=True)
    client.loop_forever()


if __name__ == "__main__":
    main()
