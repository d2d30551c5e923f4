"""`fleet simulate` into the real Mosquitto: every frame arrives exactly once, in order."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

from schemas.validate import Invalid, Valid, validate_message
from services.common.mqtt import connect, make_client
from tests.helpers import run_fleet


class Subscriber:
    """A QoS1 subscriber on fleet/# recording every message."""

    def __init__(self, mqtt, client_id):
        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        ready = threading.Event()
        self.client = make_client(mqtt, client_id)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("fleet/#", qos=1)
        self.client.on_subscribe = lambda *a: ready.set()
        self.client.on_message = self._on_message
        connect(self.client, mqtt)
        self.client.loop_start()
        assert ready.wait(10)

    def _on_message(self, client, userdata, message):
        with self.lock:
            self.messages.append((message.topic, message.payload))

    def wait_for(self, count: int, within_s: float = 60) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    break
            time.sleep(0.05)
        time.sleep(0.5)  # anything beyond `count` (a duplicate) would arrive now
        with self.lock:
            return list(self.messages)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def fleet_args(mqtt, tmp_path, *extra: str) -> list[str]:
    return [
        "simulate",
        "--host",
        mqtt.host,
        "--port",
        str(mqtt.port),
        "--out-dir",
        str(tmp_path / "sim"),
        *extra,
    ]


def simulate_and_collect(mqtt, names, tmp_path, expected: int, *args: str) -> list[tuple[str, bytes]]:
    """Run `fleet simulate` while a QoS1 subscriber records everything on fleet/#."""
    sub = Subscriber(mqtt, names("subscriber"))
    try:
        result = run_fleet(fleet_args(mqtt, tmp_path, *args))
        assert result.returncode == 0, result.stderr
        return sub.wait_for(expected)
    finally:
        sub.close()


def test_50_cars_for_10_s_at_qos1_arrive_exactly_once(mqtt, names, tmp_path):
    messages = simulate_and_collect(
        mqtt,
        names,
        tmp_path,
        50 * 5 * 10,
        "--cars",
        "50",
        "--duration",
        "10",
        "--speedup",
        "5",
        "--qos",
        "1",
        "--seed",
        "3",
    )
    seen = Counter()
    order: dict[tuple[str, str], list[int]] = {}
    for topic, payload in messages:
        frame = json.loads(payload)
        _, vin, subsystem = topic.split("/")
        seen[(vin, subsystem, frame["seq"])] += 1
        order.setdefault((vin, subsystem), []).append(frame["seq"])
    expected = {
        (f"1FLEET{i:011d}", s, q)
        for i in range(50)
        for s in ("engine", "transmission", "electronics", "chassis", "infotainment")
        for q in range(1, 11)
    }
    assert set(seen) == expected
    assert max(seen.values()) == 1  # no duplicates
    assert all(seqs == sorted(seqs) for seqs in order.values())  # per car and subsystem, in order
    assert (tmp_path / "sim" / "fleet.json").exists()
    assert (tmp_path / "sim" / "labels.jsonl").exists()


def test_bad_rate_mixes_malformed_messages_without_touching_valid_ones(mqtt, names, tmp_path):
    messages = simulate_and_collect(
        mqtt,
        names,
        tmp_path,
        10 * 5 * 10 + 50,
        "--cars",
        "10",
        "--duration",
        "10",
        "--speedup",
        "0",
        "--bad-rate",
        "0.2",
        "--seed",
        "4",
    )
    now_ms = int(time.time() * 1000)
    results = [validate_message(t, p, now_ms=now_ms) for t, p in messages]
    valid = [r for r in results if isinstance(r, Valid)]
    invalid = [r for r in results if isinstance(r, Invalid)]
    assert len(valid) == 10 * 5 * 10
    assert len({(r.vin, r.subsystem, r.frame["seq"]) for r in valid}) == 500
    assert len(invalid) >= 50  # ~20% of 500, and several kinds of them
    assert len({r.reason for r in invalid}) >= 5


def test_out_writes_frames_to_jsonl_without_mqtt(tmp_path):
    out = tmp_path / "frames.jsonl"
    result = run_fleet(
        [
            "simulate",
            "--cars",
            "3",
            "--duration",
            "5",
            "--speedup",
            "0",
            "--out",
            str(out),
            "--out-dir",
            str(tmp_path / "sim"),
            "--port",
            "1",
        ]
    )  # port 1: MQTT is never used
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 3 * 5 * 5
    assert all(line["topic"].startswith("fleet/1FLEET") for line in lines)


def test_unreachable_broker_is_one_line(tmp_path):
    result = run_fleet(["simulate", "--port", "1", "--out-dir", str(tmp_path)])
    assert result.returncode == 1
    assert result.stderr.strip().startswith("fleet: error: MQTT 127.0.0.1:1")
    assert "Traceback" not in result.stderr


def test_bad_flag_values_are_one_line(tmp_path):
    result = run_fleet(["simulate", "--qos", "2", "--out-dir", str(tmp_path)])
    assert result.returncode == 2
    assert result.stderr.strip() == "fleet: error: FLEET_SIM_QOS=2: expected 0 or 1"
