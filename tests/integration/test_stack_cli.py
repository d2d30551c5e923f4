"""`fleet up / status / down` as a person runs them, against real Mosquitto and Tansu."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from services.common.probes import free_ports
from services.stack.state import process_matches
from tests.helpers import FLEET_BIN, run_fleet


def stack_env(tmp_path: Path, ports: list[int] | None = None, **extra: str) -> dict[str, str]:
    mqtt_port, kafka_port = ports or free_ports(2)
    env = dict(os.environ)
    env.update(
        {
            "FLEET_STACK_DIR": str(tmp_path / "stack"),
            "FLEET_STACK_MQTT_PORT": str(mqtt_port),
            "FLEET_STACK_KAFKA_PORT": str(kafka_port),
            "FLEET_LOG_LEVEL": "INFO",
            "FLEET_UP_SERVICES": "false",  # the bare stack: these tests are about the brokers
        }
    )
    env.update(extra)
    return env


class Up:
    """`fleet up` in the background, its output in a file; killed on exit if still running."""

    def __init__(self, env: dict[str, str]):
        self.env = env
        self.log = Path(env["FLEET_STACK_DIR"]).parent / f"up-{os.getpid()}-{time.monotonic_ns()}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([FLEET_BIN, "up"], env=env, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text()

    def __enter__(self) -> Up:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_running(up: Up, within_s: float = 30) -> dict:
    state_file = Path(up.env["FLEET_STACK_DIR"]) / "stack.json"
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if up.proc.poll() is not None:
            pytest.fail(f"fleet up exited {up.proc.returncode}: {up.output()}")
        if state_file.exists():
            state = json.loads(state_file.read_text())
            if state["status"] == "running":
                return state
        time.sleep(0.05)
    pytest.fail("fleet up did not reach running")


def assert_all_gone(state: dict, within_s: float = 15) -> None:
    deadline = time.monotonic() + within_s
    pids = [(c["pid"], c["exe"]) for c in state["children"]]
    while time.monotonic() < deadline and any(process_matches(p, e) for p, e in pids):
        time.sleep(0.05)
    assert [p for p, e in pids if process_matches(p, e)] == [], "orphan broker processes left"


def test_up_status_down_from_another_shell(tmp_path):
    env = stack_env(tmp_path)
    with Up(env) as up:
        state = wait_running(up)
        assert [c["name"] for c in state["children"]] == ["mosquitto", "tansu"]

        status = run_fleet(["status"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("answers") == 2

        listed = run_fleet(["topics", "list"], {**env, "FLEET_KAFKA_BOOTSTRAP": state["endpoints"]["kafka"]})
        assert listed.returncode == 0
        assert listed.stdout.count(" ok ") == 7  # topics were provisioned by `up`

        down = run_fleet(["down"], env)
        assert down.returncode == 0, down.stderr
        assert up.proc.wait(20) == 0
        output = up.output()
        # reverse start order: Tansu (started second) stops first
        assert output.index("stopped child=tansu") < output.index("stopped child=mosquitto")
        assert_all_gone(state)
        assert not (Path(env["FLEET_STACK_DIR"]) / "stack.json").exists()
        assert run_fleet(["status"], env).returncode == 1


def test_up_runs_the_services_and_ctrl_c_stops_every_child(tmp_path):
    metrics = free_ports(3)
    env = stack_env(
        tmp_path,
        FLEET_UP_SERVICES="true",
        FLEET_LAKE_DIR=str(tmp_path / "lake"),
        FLEET_BRIDGE_METRICS_PORT=str(metrics[0]),
        FLEET_HOT_METRICS_PORT=str(metrics[1]),
        FLEET_COLD_METRICS_PORT=str(metrics[2]),
        FLEET_HOT_DATADIR=str(tmp_path / "hot"),
    )
    with Up(env) as up:
        state = wait_running(up, within_s=60)
        assert [c["name"] for c in state["children"]] == ["mosquitto", "tansu", "bridge", "hot", "cold"]
        status = run_fleet(["status", "--interval", "0.5"], env)
        assert status.returncode == 0, status.stdout + status.stderr
        assert status.stdout.count("answers") == 5
        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(40) in (0, 130)
        assert_all_gone(state)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_stops_everything_in_reverse_order(tmp_path, signum):
    with Up(stack_env(tmp_path)) as up:
        state = wait_running(up)
        up.proc.send_signal(signum)
        assert up.proc.wait(20) == 0
        assert_all_gone(state)
        output = up.output()
        assert output.index("stopped child=tansu") < output.index("stopped child=mosquitto")


def test_sigkill_of_the_launcher_leaves_no_orphan(tmp_path):
    env = stack_env(tmp_path)
    with Up(env) as up:
        state = wait_running(up)
        up.proc.kill()  # no chance to clean up: the kernel's PDEATHSIG must do it
        up.proc.wait(10)
        assert_all_gone(state)
    # the stale state file does not block a new `up`, and `down` tidies it
    assert run_fleet(["down"], env).returncode == 0
    with Up(env) as up:
        wait_running(up)


def test_a_second_up_in_the_same_folder_is_refused(tmp_path):
    env = stack_env(tmp_path)
    with Up(env) as up:
        wait_running(up)
        again = run_fleet(["up"], {**env, "FLEET_STACK_MQTT_PORT": str(free_ports(1)[0])})
        assert again.returncode == 1
        assert "a stack already runs from" in again.stderr
        assert again.stderr.strip().count("\n") == 0


def test_two_stacks_run_side_by_side(tmp_path):
    ports = free_ports(4)  # one call: the two stacks can never be handed the same port
    env_a, env_b = stack_env(tmp_path / "a", ports[:2]), stack_env(tmp_path / "b", ports[2:])
    with Up(env_a) as a, Up(env_b) as b:
        wait_running(a)
        wait_running(b)
        assert run_fleet(["status"], env_a).returncode == 0
        assert run_fleet(["status"], env_b).returncode == 0


def test_port_in_use_is_one_clear_line(tmp_path):
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_fleet(["up"], stack_env(tmp_path, FLEET_STACK_KAFKA_PORT=str(port)))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    expected = f"port {port} (kafka) is in use on 127.0.0.1: stop what holds it or set FLEET_STACK_KAFKA_PORT"
    assert last == f"fleet: error: {expected}"
    assert "Traceback" not in result.stderr


def test_missing_mosquitto_is_one_clear_line(tmp_path):
    result = run_fleet(["up"], stack_env(tmp_path, FLEET_MOSQUITTO_BIN=str(tmp_path / "mosquitto")))
    assert result.returncode == 1
    assert "fleet: error: mosquitto not found" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_broker_that_dies_at_start_is_one_clear_line_and_stops_the_rest(tmp_path):
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'tansu: cannot bind: simulated failure' >&2\nexit 3\n")
    fake.chmod(0o755)
    env = stack_env(tmp_path, FLEET_TANSU_BIN=str(fake))
    result = run_fleet(["up"], env)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "fleet: error: tansu exited at start with code 3: tansu: cannot bind: simulated failure"
    )
    assert "Traceback" not in result.stderr
    # Mosquitto, which had started, was stopped again.
    assert "stopped child=mosquitto" in result.stderr
    assert not (Path(env["FLEET_STACK_DIR"]) / "stack.json").exists()


def test_a_bad_mosquitto_config_is_reported_with_its_log(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("no_such_option 1\n")
    result = run_fleet(["up"], stack_env(tmp_path, FLEET_MOSQUITTO_CONF=str(conf)))
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("fleet: error: mosquitto exited at start with code")
    assert "no_such_option" in last
