import os
import sys
from pathlib import Path

import pytest

from services.common.errors import BinaryNotFound, ConfigError
from services.stack.launcher import find_mosquitto, find_tansu, render_mosquitto_conf
from services.stack.settings import StackSettings
from services.stack.state import (
    ChildRecord,
    StackState,
    process_matches,
    read_state,
    remove_state,
    write_state,
)


def test_rendered_conf_puts_our_listener_and_data_dir_before_the_base(tmp_path):
    settings = StackSettings(dir=tmp_path, mqtt_port=18831, host="127.0.0.1")
    text = render_mosquitto_conf(settings, "max_queued_messages 5\n")
    lines = text.splitlines()
    assert "listener 18831 127.0.0.1" in lines
    assert f"persistence_location {tmp_path.resolve()}/mosquitto/" in lines
    assert lines.index("listener 18831 127.0.0.1") < lines.index("max_queued_messages 5")


def test_dev_conf_sets_queue_limits_deliberately():
    conf = StackSettings().mosquitto_conf.read_text().splitlines()
    values = dict(line.split(None, 1) for line in conf if line and not line.startswith("#"))
    assert int(values["max_queued_messages"]) >= 1_000_000  # default 1000 drops silently
    assert int(values["max_queued_bytes"]) > 0  # bounded: memory cannot grow without limit
    assert int(values["max_inflight_messages"]) > 0
    assert values["persistence"] == "true"


def test_missing_mosquitto_is_one_clear_line(tmp_path):
    with pytest.raises(BinaryNotFound) as info:
        find_mosquitto(str(tmp_path / "no-mosquitto"))
    assert "make setup" in str(info.value)
    assert "\n" not in str(info.value)


def test_configured_tansu_must_be_executable(tmp_path):
    with pytest.raises(BinaryNotFound, match="FLEET_TANSU_BIN"):
        find_tansu(str(tmp_path / "nope"))


def test_bundled_tansu_resolves():
    assert os.access(find_tansu(""), os.X_OK)


def test_same_port_twice_is_a_config_error():
    with pytest.raises(ConfigError, match="both 1883"):
        StackSettings.from_env({"FLEET_STACK_MQTT_PORT": "1883", "FLEET_STACK_KAFKA_PORT": "1883"})


def make_state(pid=1234):
    return StackState(
        launcher_pid=pid,
        launcher_exe="/usr/bin/python3",
        started_at="2026-11-22T00:00:00Z",
        status="running",
        endpoints={"mqtt": "127.0.0.1:1883"},
        children=(ChildRecord("mosquitto", 99, "/usr/sbin/mosquitto", "log", "mqtt", "127.0.0.1:1883"),),
    )


def test_state_round_trips_through_the_file(tmp_path):
    path = tmp_path / "stack.json"
    write_state(path, make_state())
    assert read_state(path) == make_state()


def test_unreadable_state_is_none(tmp_path):
    path = tmp_path / "stack.json"
    assert read_state(path) is None
    path.write_text('{"launcher_pid": 1}')
    assert read_state(path) is None


def test_state_is_removed_only_by_its_owner(tmp_path):
    path = tmp_path / "stack.json"
    write_state(path, make_state(pid=1234))
    remove_state(path, owner_pid=999)
    assert path.exists()
    remove_state(path, owner_pid=1234)
    assert not path.exists()


def test_process_matches_checks_the_command_line():
    exe = Path("/proc/self/cmdline").read_bytes().split(b"\0")[0].decode()
    assert process_matches(os.getpid(), exe)
    assert not process_matches(os.getpid(), "/usr/sbin/mosquitto")
    assert not process_matches(2**22 + 7, sys.executable)  # beyond pid_max: never running
