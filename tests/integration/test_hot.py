"""`fleet hot` on the real stack: simulator -> Mosquitto -> bridge -> Tansu -> Faust -> alerts.health.

The alerts must match the simulator's ground truth (labels.jsonl): every detectable fault raises
one episode of its rule on its car within the rule's on-delay + 2 s of the fault's onset, healthy
cars raise nothing, a worker killed mid-episode raises no second episode, a silent car is stale.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.admin import NewTopic

from services.common.kafka import start_producer
from services.common.metrics import parse_text, scrape
from services.common.mqtt import forget_session
from services.hot.app import build_app
from services.hot.config import load_rules
from services.hot.settings import HotSettings
from tests.helpers import FLEET_BIN
from tests.integration.bridge_support import BridgeProcess, BridgeTopics, read_all

# One fault per car on cars 0..8, two minutes in; cars 9..11 stay healthy.
SCENARIO = """
faults:
  - {car: 0, fault: overheat_thermostat, at_s: 120}
  - {car: 1, fault: overheat_coolant_leak, at_s: 120}
  - {car: 2, fault: oil_pressure_loss, at_s: 120}
  - {car: 3, fault: alternator_failure, at_s: 120}
  - {car: 4, fault: tire_slow_leak, at_s: 120, detail: tire_fl_kpa}
  - {car: 5, fault: tire_puncture, at_s: 120, detail: tire_rr_kpa}
  - {car: 6, fault: brake_pads_worn, at_s: 120}
  - {car: 7, fault: dtc_appeared, at_s: 120, detail: P0217}
  - {car: 8, fault: telematics_silent, at_s: 120, duration_s: 150}
"""
CARS, SECONDS, SPEEDUP = 12, 900, 20  # 54,000 frames over 45 s of wall time


class HotProcess:
    """`fleet hot` in a subprocess."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env, self.log, self.proc = env, log, None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.with_suffix(f".{self.starts}.log").open("wb") as out:
            self.proc = subprocess.Popen(
                [FLEET_BIN, "hot"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def log_tail(self) -> str:
        return "\n".join(
            "\n".join(p.read_text(errors="replace").splitlines()[-15:])
            for p in sorted(self.log.parent.glob(self.log.stem + ".*.log"))
        )


@pytest.fixture
async def pipeline(admin, names, fleet_env, mqtt, tmp_path):  # type: ignore[no-untyped-def]
    """Private telemetry + alerts topics, a bridge and a hot worker wired to them."""
    topics = BridgeTopics(prefix=names("t") + ".")
    await topics.create(admin)
    alerts_topic = names("alerts")
    await admin.create_topics([NewTopic(alerts_topic, 6, 1)])
    bridge = BridgeProcess(fleet_env, topics, names("bridge"), tmp_path)
    bridge.start()
    await bridge.wait_ready()
    hot = HotProcess(
        {
            **fleet_env,
            "FLEET_HOT_APP_ID": names("hot"),
            "FLEET_HOT_TOPIC_PREFIX": topics.prefix,
            "FLEET_HOT_ALERTS_TOPIC": alerts_topic,
            "FLEET_HOT_DATADIR": str(tmp_path / "hot"),
            "FLEET_HOT_METRICS_PORT": "0",
            "FLEET_LOG_LEVEL": "INFO",
        },
        tmp_path / "hot",
    )
    hot.start()
    yield bridge, hot, alerts_topic
    hot.stop()
    bridge.stop()
    forget_session(mqtt, bridge.client_id)


async def wait_ready(hot: HotProcess, within_s: float = 60) -> None:
    """Until the Faust worker says it is ready (its group joined, its Table recovered)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert hot.proc.poll() is None, hot.log_tail()
        if "Worker]: Ready" in hot.log_tail():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"hot worker not ready in {within_s}s: {hot.log_tail()}")


async def settled(hot: HotProcess, quiet_s: float = 4, within_s: float = 90) -> None:
    """Until the worker's frame count stops moving for `quiet_s` (it has caught up)."""
    deadline = time.monotonic() + within_s
    last, since = -1.0, time.monotonic()
    while time.monotonic() < deadline:
        try:
            seen = await worker_frames(hot)
        except (IndexError, OSError):
            seen = -1.0  # restarting: no endpoint yet
        if seen != last:
            last, since = seen, time.monotonic()
        elif seen > 0 and time.monotonic() - since >= quiet_s:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"hot worker still busy after {within_s}s: {hot.log_tail()}")


async def worker_frames(hot: HotProcess) -> float:
    """Frames a worker evaluated, from its log's metrics line (its port is picked at start)."""
    text = hot.log_tail()
    url = (
        [line for line in text.splitlines() if "metrics endpoint listening" in line][-1]
        .split("url=")[1]
        .split()[0]
    )
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    return parse_text(await scrape(host, int(port))).get("fleet_hot_frames_total", 0.0)


def simulate(mqtt, tmp_path: Path) -> subprocess.Popen[bytes]:
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text(SCENARIO)
    argv = [FLEET_BIN, "simulate", "--host", mqtt.host, "--port", str(mqtt.port), "--cars", str(CARS)]
    argv += ["--duration", str(SECONDS), "--speedup", str(SPEEDUP), "--scenario", str(scenario)]
    argv += ["--out-dir", str(tmp_path / "sim")]
    with (tmp_path / "sim.log").open("wb") as out:
        return subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)


def decision_delay_s(rule: str) -> float:
    """How much vehicle time the rule needs by design: its on-delay, its measuring window, or M frames."""
    section = getattr(load_rules(), rule, None)
    delay = float(getattr(section, "on_delay_s", 0.0) or 0.0) + float(
        getattr(section, "window_s", 0.0) or 0.0
    )
    return delay + float(getattr(section, "m", 0) or 0)  # N-of-M: at most M frames at 1 Hz


async def run_and_collect(kafka, alerts_topic, tmp_path, sim, hot, kill_at_s=None, others=()):  # type: ignore[no-untyped-def]
    started = time.monotonic()
    killed = False
    while sim.poll() is None:
        await asyncio.sleep(0.5)
        if kill_at_s is not None and not killed and time.monotonic() - started > kill_at_s:
            hot.kill()
            killed = True
            hot.start()
    assert sim.returncode == 0, (tmp_path / "sim.log").read_text()
    labels = [json.loads(line) for line in (tmp_path / "sim" / "labels.jsonl").read_text().splitlines()]
    for worker in (hot, *others):
        await settled(worker)  # the last frames through the bridge and the workers
    records = await read_all(kafka, [alerts_topic], lambda rs: False, within_s=5)
    return labels, [json.loads(r.value) for r in records], killed


def score(labels, alerts):  # type: ignore[no-untyped-def]
    """(missed labels, unexplained raised episodes, labels with > 1 episode, detection delays s)."""
    raised: dict[str, dict] = {}
    for a in alerts:
        if a["status"] == "raised":
            raised.setdefault(a["alert_id"], a)  # a redelivered record repeats its alert_id
    explained: set[str] = set()
    missed, doubled, delays = [], [], []
    for label in labels:
        if label["onset_ts"] is None:
            continue  # the run ended before the fault showed in the signals
        end = label["end_ts"] or float("inf")
        episodes = [
            a
            for a in raised.values()
            if a["vin"] == label["vin"]
            and a["rule"] == label["rule"]
            and a["started_at"] <= end
            and a["ts"] >= label["start_ts"]
        ]
        if not episodes:
            missed.append(label)
            continue
        if len(episodes) > 1:
            doubled.append((label, episodes))
        explained.update(a["alert_id"] for a in episodes)
        first = min(episodes, key=lambda a: a["ts"])
        delays.append((label["rule"], (first["ts"] - label["onset_ts"]) / 1000))
    unexplained = [a for a in raised.values() if a["alert_id"] not in explained]
    return missed, unexplained, doubled, delays, len(raised)


async def test_alerts_match_the_ground_truth_with_two_workers_sharing_the_partitions(
    pipeline, mqtt, kafka, tmp_path
):
    bridge, hot, alerts_topic = pipeline
    second = HotProcess({**hot.env, "FLEET_HOT_DATADIR": str(tmp_path / "hot2")}, tmp_path / "hot2")
    second.start()
    try:
        await wait_ready(hot)
        await wait_ready(second)
        sim = simulate(mqtt, tmp_path)
        labels, alerts, _ = await run_and_collect(kafka, alerts_topic, tmp_path, sim, hot, others=(second,))
        frames = [await worker_frames(w) for w in (hot, second)]
    finally:
        second.stop()
    assert min(frames) > 0, f"one worker got no partition: {frames}"
    missed, unexplained, doubled, delays, episodes = score(labels, alerts)
    print(f"labels {len(labels)}, raised episodes {episodes}, delays {delays}")
    assert not missed, f"missed: {missed}"
    assert len(unexplained) <= 0.01 * max(1, episodes), f"false alerts: {unexplained}"
    assert not doubled, f"more than one episode: {doubled}"
    for rule, delay in delays:
        if rule != "stale":  # vehicle time; staleness is decided on the wall clock
            assert delay <= decision_delay_s(rule) + 2, (rule, delay)
    assert any(label["rule"] == "stale" for label in labels)


async def test_a_worker_killed_mid_episode_raises_no_second_episode(pipeline, mqtt, kafka, tmp_path):
    bridge, hot, alerts_topic = pipeline
    await wait_ready(hot)
    sim = simulate(mqtt, tmp_path)
    # faults start at 120 s of vehicle time = 6 s of wall time; coolant onsets come later
    labels, alerts, killed = await run_and_collect(kafka, alerts_topic, tmp_path, sim, hot, kill_at_s=15)
    assert killed
    missed, unexplained, doubled, _delays, episodes = score(labels, alerts)
    assert not doubled, f"an episode raised twice across the restart: {doubled}"
    assert not missed, f"missed: {missed}"
    assert len(unexplained) <= 0.01 * max(1, episodes), f"false alerts: {unexplained}"


async def test_table_recovery_reads_a_batched_changelog_to_its_last_record(kafka, admin, names, tmp_path):
    """Faust's Table recovery reads a changelog up to `consumer.highwaters`; on Tansu the plain
    end offset stops inside the last record batch (test_conformance_kafka.py), so a commit's state
    records written together would be half restored after a kill -9."""
    topic = names("rule-state-changelog")
    await admin.create_topics([NewTopic(topic, 1, 1)])
    producer = await start_producer(kafka, linger_ms=200)  # the records share a few batches
    try:
        for n in range(40):
            await producer.send(topic, b"{}", key=f"VIN{n}".encode())
        await producer.flush()
    finally:
        await producer.stop()
    app = build_app(HotSettings(datadir=tmp_path, metrics_port=0), kafka)
    tp = TopicPartition(topic, 0)
    try:
        assert await app.consumer.highwaters(tp) == {tp: 40}
    finally:
        app.consumer._thread.thread_loop.close()  # the consumer thread's own loop, never started
