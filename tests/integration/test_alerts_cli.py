"""`fleet alerts` against the session's broker: deduplicated, filtered JSON lines and one-line errors."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import time

import pytest
from aiokafka.admin import NewTopic

from services.common.kafka import start_producer
from services.common.probes import free_ports
from services.hot.alerts import Alert, alert_id
from tests.helpers import FLEET_BIN, run_fleet

VIN_A = "1FLEET00000000001"
VIN_B = "1FLEET00000000002"
VIN_C = "1FLEET00000000003"
T0 = 1_795_000_433_000


def alert(vin: str, rule: str, status: str, severity: str, started_at: int = T0, **fields) -> Alert:
    values = {
        "alert_id": alert_id(vin, rule, started_at),
        "vin": vin,
        "rule": rule,
        "subsystem": "engine",
        "severity": severity,
        "status": status,
        "value": 112.4,
        "threshold": 110.0,
        "started_at": started_at,
        "ts": started_at + 30_000,
        "detected_at": started_at + 30_120,
        "message": f"{rule} {status}",
    }
    return Alert(**(values | fields))


A_RAISED = alert(VIN_A, "coolant_temp", "raised", "warning")
A_ESCALATED = alert(VIN_A, "coolant_temp", "escalated", "critical", ts=T0 + 90_000)
A_CLEARED = alert(VIN_A, "coolant_temp", "cleared", "critical", ts=T0 + 150_000)
B_RAISED = alert(VIN_B, "oil_pressure", "raised", "critical")
C_RAISED = alert(VIN_C, "battery_voltage", "raised", "info")

# (key, value) in production order: a redelivered raise (the hot path is at-least-once, its
# wall clock moved on) and two records that are not alerts.
RECORDS: list[tuple[str, bytes]] = [
    (VIN_A, A_RAISED.to_json()),
    (VIN_B, B_RAISED.to_json()),
    (VIN_A, alert(VIN_A, "coolant_temp", "raised", "warning", detected_at=T0 + 99_999).to_json()),
    (VIN_C, b"not json at all"),
    (VIN_A, A_ESCALATED.to_json()),
    (VIN_B, b'{"vin": 42}'),
    (VIN_C, C_RAISED.to_json()),
    (VIN_A, A_CLEARED.to_json()),
    (VIN_B, B_RAISED.to_json()),
]


async def provision(admin, names, kafka, records=RECORDS) -> str:
    topic = names("alerts")
    await admin.create_topics([NewTopic(topic, 6, 1)])
    producer = await start_producer(kafka)
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key.encode())
    finally:
        await producer.stop()
    return topic


def alerts_of(stdout: str) -> list[Alert]:
    return [Alert.from_json(line) for line in stdout.splitlines()]


def by_vin(alerts: list[Alert]) -> dict[str, list[tuple[str, str]]]:
    # Order holds per partition (per VIN key), not across partitions.
    seen: dict[str, list[tuple[str, str]]] = {}
    for a in alerts:
        seen.setdefault(a.vin, []).append((a.status, a.severity))
    return seen


async def fleet(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_fleet, ["alerts", *args], env, 30)


async def test_from_beginning_json_is_deduplicated_filtered_and_skips_malformed(
    admin, names, kafka, fleet_env
):
    topic = await provision(admin, names, kafka)
    base = ["--topic", topic, "--from-beginning", "--json", "--idle-exit", "1.5"]
    everything, critical, only_b, plain = await asyncio.gather(
        fleet(base, fleet_env),
        fleet([*base, "--severity", "critical"], fleet_env),
        fleet([*base, "--vin", VIN_B, "--rule", "oil_pressure"], fleet_env),
        fleet([a for a in base if a != "--json"], fleet_env),
    )

    assert everything.returncode == 0, everything.stderr
    shown = alerts_of(everything.stdout)
    assert sorted(shown, key=lambda a: (a.vin, a.ts)) == [
        A_RAISED,
        A_ESCALATED,
        A_CLEARED,
        B_RAISED,
        C_RAISED,
    ]
    assert by_vin(shown)[VIN_A] == [("raised", "warning"), ("escalated", "critical"), ("cleared", "critical")]
    warnings = everything.stderr.strip().splitlines()
    assert len(warnings) == 2, everything.stderr
    assert all(
        w.startswith(f"fleet alerts: warning: skipped a malformed record at {topic}[") for w in warnings
    )
    assert any("alert_id must be a string" in w for w in warnings)
    assert "Traceback" not in everything.stderr

    # minimum severity: the warning-level raise is left out; its episode shows from the escalation
    assert critical.returncode == 0, critical.stderr
    assert by_vin(alerts_of(critical.stdout)) == {
        VIN_A: [("escalated", "critical"), ("cleared", "critical")],
        VIN_B: [("raised", "critical")],
    }

    assert only_b.returncode == 0, only_b.stderr
    assert alerts_of(only_b.stdout) == [B_RAISED]

    # not --json and not a terminal: one plain line per event, a summary on stderr
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert len(lines) == 5
    b_line = f"2026-11-18 11:14:23Z raised    critical {VIN_B} oil_pressure 112.4 / 110 oil_pressure raised"
    assert b_line in lines
    assert plain.stderr.strip().splitlines()[-1] == (
        "fleet alerts: shown 5, duplicates 2, replays 0, filtered 0, malformed 2"
    )


async def test_max_ends_after_n_records(admin, names, kafka, fleet_env):
    topic = await provision(admin, names, kafka, RECORDS[:2])
    started = time.monotonic()
    result = await fleet(["--topic", topic, "--from-beginning", "--json", "--max", "2"], fleet_env)
    assert result.returncode == 0, result.stderr
    assert sorted(a.vin for a in alerts_of(result.stdout)) == [VIN_A, VIN_B]
    assert time.monotonic() - started < 10


async def test_without_from_beginning_it_tails_and_ctrl_c_exits_cleanly(admin, names, kafka, fleet_env):
    topic = await provision(admin, names, kafka, RECORDS[:2])
    proc = await asyncio.create_subprocess_exec(
        FLEET_BIN,
        "alerts",
        "--topic",
        topic,
        "--json",
        env=fleet_env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first_line = asyncio.ensure_future(proc.stdout.readline())
    producer = await start_producer(kafka)
    sent: set[str] = set()
    try:
        # The watcher says nothing when it is ready: keep writing new episodes until one shows.
        deadline = time.monotonic() + 15
        while not first_line.done() and time.monotonic() < deadline:
            new = alert(VIN_C, "battery_voltage", "raised", "warning", started_at=T0 + 1000 + len(sent))
            sent.add(new.alert_id)
            await producer.send_and_wait(topic, new.to_json(), key=VIN_C.encode())
            await asyncio.wait({first_line}, timeout=0.3)
    finally:
        await producer.stop()
        proc.send_signal(signal.SIGINT)
        try:
            async with asyncio.timeout(10):
                stderr = (await proc.stderr.read()).decode()
                await proc.wait()
        except TimeoutError:
            proc.kill()
            await proc.wait()
            pytest.fail("fleet alerts did not stop on Ctrl-C")
    assert first_line.done() and first_line.result(), stderr
    # The records written before the watcher started are not shown: only new episodes.
    assert Alert.from_json(first_line.result()).alert_id in sent
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


async def test_a_missing_topic_is_one_line_and_is_not_created(admin, names, fleet_env):
    missing = names("missing")
    result = await fleet(["--topic", missing, "--json"], fleet_env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith(f"fleet: error: topic {missing} does not exist at ")
    assert missing not in await admin.list_topics()  # watching never auto-creates (Tansu would: 4 partitions)


async def test_an_unreachable_broker_is_one_line_within_seconds(fleet_env):
    (port,) = free_ports(1)
    started = time.monotonic()
    result = await fleet(["--bootstrap", f"127.0.0.1:{port}", "--json"], fleet_env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert result.stderr.startswith(f"fleet: error: no Kafka broker answers at 127.0.0.1:{port}")
    assert time.monotonic() - started < 8
    assert result.stdout == ""


def test_help_documents_the_script_options():
    result = run_fleet(["alerts", "--help"], {"COLUMNS": "200", "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0
    for text in ("--from-beginning", "--idle-exit", "--max", "FLEET_ALERTS_TOPIC", "default 'alerts.health'"):
        assert text in result.stdout
