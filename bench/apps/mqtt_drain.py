"""The MQTT-side ceiling of `fleet bench bridge`: bare paho reading a queued backlog, acking at once.

No validation, no Kafka: how fast one Python process can take QoS1 messages off Mosquitto
with paho (MQTT 3.1.1, driven by asyncio like our bridge, the faster of paho's two loop modes
as measured here). Prints {"messages": n, "rate": msg/s} (first message -> last) as JSON.

    python -m bench.apps.mqtt_drain <client_id> <count>
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import paho.mqtt.client as mqtt

from services.common.mqtt import connect, make_client
from services.common.settings import MqttSettings


async def drain(client_id: str, count: int) -> dict[str, float]:
    """Read `count` messages from the persistent session `client_id`."""
    settings = MqttSettings.from_env()
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    stamps: list[float] = []
    client = make_client(settings, client_id, persistent=True, v5=False, manual_ack=True)

    def on_message(c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        stamps.append(time.perf_counter())
        c.ack(message.mid, message.qos)
        if len(stamps) == count and not done.done():
            done.set_result(None)

    def readable() -> None:
        for _ in range(256):
            before = len(stamps)
            if client.loop_read() != mqtt.MQTT_ERR_SUCCESS or len(stamps) == before:
                break

    client.on_message = on_message
    client.on_socket_open = lambda c, u, sock: loop.add_reader(sock, readable)
    client.on_socket_close = lambda c, u, sock: loop.remove_reader(sock)
    client.on_socket_register_write = lambda c, u, sock: loop.add_writer(sock, c.loop_write)
    client.on_socket_unregister_write = lambda c, u, sock: loop.remove_writer(sock)
    connect(client, settings, persistent=True)
    await asyncio.wait_for(done, timeout=300)
    client.disconnect()
    rate = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return {"messages": len(stamps), "rate": rate}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(drain(sys.argv[1], int(sys.argv[2])))))
