"""`fleet demo` end to end, short, on free ports: the summary it prints, and Ctrl-C leaving nothing behind.

Each test starts its own stack (Mosquitto, Tansu, bridge, hot, cold) through the settings, so it
never touches the session's brokers or the default ports.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

from services.common.probes import free_ports
from services.stack.state import process_matches
from tests.helpers import FLEET_BIN


def demo_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    mqtt, kafka, bridge, hot, cold = free_ports(5)
    env = dict(os.environ)
    env.update(
        {
            "FLEET_STACK_DIR": str(tmp_path / "stack"),
            "FLEET_LAKE_DIR": str(tmp_path / "lake"),
            "FLEET_STACK_MQTT_PORT": str(mqtt),
            "FLEET_STACK_KAFKA_PORT": str(kafka),
            "FLEET_BRIDGE_METRICS_PORT": str(bridge),
            "FLEET_HOT_METRICS_PORT": str(hot),
            "FLEET_COLD_METRICS_PORT": str(cold),
            "FLEET_DEMO_SETTLE_S": "3",
            "FLEET_DEMO_CATCHUP_TIMEOUT_S": "40",
        }
    )
    env.update(extra)
    return env


def children_of(state_file: Path) -> list[tuple[str, int, str]]:
    state = json.loads(state_file.read_text())
    return [(c["name"], c["pid"], c["exe"]) for c in state["children"]]


def wait_for_children(
    state_file: Path, proc: subprocess.Popen[str], names: set[str], within_s: float
) -> list:
    """The recorded children once every one of `names` is there."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, "fleet demo exited early"
        if state_file.exists():
            try:
                children = children_of(state_file)
            except (ValueError, KeyError):
                children = []  # caught between write and rename: try again
            if names <= {name for name, _, _ in children}:
                return children
        time.sleep(0.1)
    pytest.fail(f"the demo did not start {names} within {within_s} s")


def assert_gone(children: list[tuple[str, int, str]], within_s: float = 15) -> None:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline and any(process_matches(pid, exe) for _, pid, exe in children):
        time.sleep(0.1)
    left = [(name, pid) for name, pid, exe in children if process_matches(pid, exe)]
    assert left == [], f"processes left behind: {left}"


def test_a_short_demo_prints_the_lake_check_the_leaderboard_and_what_to_try(tmp_path):
    env = demo_env(tmp_path)
    started = time.monotonic()
    done = subprocess.run(
        [FLEET_BIN, "demo", "--cars", "10", "--seconds", "12", "--fault-rate", "30"],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, out[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert re.search(r"caught up [\d.]+ s after the simulator stopped", out), out
    # every record the bridge produced and every alert hot sent is a row of the lake
    lake_line = re.search(r"lake: ([\d,]+) frames and ([\d,]+) alert records = ([\d,]+) produced", out)
    assert lake_line, out
    assert lake_line[1] == lake_line[3] and int(lake_line[1].replace(",", "")) > 1000
    assert "fuel efficiency (rank 1 = least fuel per km)" in out
    assert "l_per_100km" in out and "1FLEET" in out
    assert "health: alert episodes per car" in out
    assert f"the lake: {(tmp_path / 'lake').resolve()}" in out
    for hint in ("fleet query leaderboard", "fleet alerts --from-beginning", "fleet up", "fleet status"):
        assert hint in out
    assert "everything is stopped" in out
    assert list((tmp_path / "lake").rglob("*.parquet"))
    assert (tmp_path / "stack" / "sim" / "labels.jsonl").exists()
    assert not (tmp_path / "stack" / "stack.json").exists()  # the stack is down and tidied
    assert time.monotonic() - started < 90


@pytest.mark.parametrize("signum", [signal.SIGINT], ids=["ctrl-c"])
def test_ctrl_c_mid_run_leaves_no_process_behind(tmp_path, signum):
    env = demo_env(tmp_path)
    log = tmp_path / "demo.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [FLEET_BIN, "demo", "--cars", "10", "--seconds", "60"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    try:
        state_file = tmp_path / "stack" / "stack.json"
        children = wait_for_children(state_file, proc, {"mosquitto", "tansu", "bridge", "hot", "cold"}, 60)
        assert all(process_matches(pid, exe) for _, pid, exe in children)
        # mid-run: the simulator is publishing
        deadline = time.monotonic() + 30
        while "simulating" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        proc.send_signal(signum)
        assert proc.wait(40) == 130, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert_gone(children)
    text = log.read_text()
    assert "interrupted while" in text and "every process is stopped" in text
    assert "Traceback" not in text
    assert not state_file.exists()
