"""Publish fresh frames at a fixed rate, `ts` = the publish wall clock (ms), for latency runs.

Its own process, so the measuring consumer of `fleet bench bridge` never waits for the GIL of
the publisher's paho threads. Prints {"sent": n} as JSON at the end.

    python -m bench.apps.paced_publisher <rate msg/s> <seconds>
"""

from __future__ import annotations

import json
import os
import sys
import time

from schemas.catalog import SUBSYSTEMS
from services.common.settings import MqttSettings
from simulators.fleet import Fleet, FleetConfig
from simulators.publisher import MqttSink
from simulators.simulation import encode


def publish(rate: int, seconds: float) -> int:
    """Frames of rate/5 cars (one tick = one second of them), paced message by message."""
    fleet = Fleet(FleetConfig(cars=max(1, rate // len(SUBSYSTEMS)), seed=4))
    sink = MqttSink(MqttSettings.from_env(), qos=1, connections=2, client_prefix=f"bench-paced-{os.getpid()}")
    sent = 0
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        for vin, sub, frame in fleet.step():
            if (delay := t0 + sent / rate - time.monotonic()) > 0.001:
                time.sleep(delay)
            frame["ts"] = int(time.time() * 1000)
            sink.publish(f"fleet/{vin}/{sub}", encode(frame))
            sent += 1
    sink.close(30.0)
    return sent


if __name__ == "__main__":
    print(json.dumps({"sent": publish(int(sys.argv[1]), float(sys.argv[2]))}))
