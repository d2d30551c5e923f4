"""The pipeline's services as ServiceSpecs, metrics endpoints, the lake set aside, status rates and lag."""

import datetime as dt
import socket
import sys

import pytest

from services.common.errors import BrokerUnavailable, PortInUse
from services.common.metrics import MetricsServer
from services.common.probes import free_ports
from services.stack.pipeline import (
    Endpoint,
    MetricsEndpoints,
    UpSettings,
    fleet_command,
    lag_of,
    metric_sum,
    metrics_ready,
    pipeline_services,
    rate_rows,
    set_lake_aside,
)
from services.stack.settings import StackSettings


def test_endpoint_url_round_trip():
    e = Endpoint("127.0.0.1", 9464)
    assert e.url == "http://127.0.0.1:9464/metrics"
    assert Endpoint.from_url(e.url) == e
    assert Endpoint.from_url("127.0.0.1:1883") is None  # a broker's endpoint
    assert Endpoint.from_url("http://nohost/metrics") is None


def test_port_zero_becomes_a_free_port_and_the_others_are_kept():
    picked = MetricsEndpoints.resolve(
        {"bridge": ("127.0.0.1", 0), "hot": ("127.0.0.1", 0), "cold": ("127.0.0.1", 0)}
    )
    ports = [e.port for _, e in picked.items()]
    assert all(p > 0 for p in ports) and len(set(ports)) == 3


async def test_a_taken_metrics_port_is_one_line_naming_its_variable_and_nothing_starts(tmp_path):
    from services.stack.launcher import Stack

    prepared = []
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        mqtt, kafka = free_ports(2)
        settings = StackSettings(dir=tmp_path / "stack", mqtt_port=mqtt, kafka_port=kafka)
        endpoints = MetricsEndpoints(
            Endpoint("127.0.0.1", 0), Endpoint("127.0.0.1", port), Endpoint("127.0.0.1", 0)
        )
        stack = Stack(
            settings,
            pipeline_services(settings, endpoints, tmp_path / "lake"),
            prepare=lambda: prepared.append(1),
        )
        with pytest.raises(PortInUse) as info:
            await stack.start()
    assert "FLEET_HOT_METRICS_PORT" in str(info.value)
    assert "\n" not in str(info.value)
    assert stack.children == [] and prepared == []  # checked before anything started or moved


def test_services_are_fleet_verbs_aimed_at_this_stack(tmp_path):
    stack = StackSettings(dir=tmp_path / "stack", mqtt_port=11883, kafka_port=19092)
    endpoints = MetricsEndpoints(Endpoint("127.0.0.1", 1), Endpoint("127.0.0.1", 2), Endpoint("127.0.0.1", 3))
    specs = pipeline_services(stack, endpoints, tmp_path / "lake")
    assert [s.name for s in specs] == ["bridge", "hot", "cold"]
    for spec in specs:
        assert spec.argv[-1] == spec.name or spec.argv[-1] == f"services.{spec.name}"
        assert spec.env["FLEET_KAFKA_BOOTSTRAP"] == "127.0.0.1:19092"
        assert spec.env["FLEET_MQTT_PORT"] == "11883"
        assert spec.endpoint.startswith("http://127.0.0.1:")
        assert spec.ready is not None
    bridge, hot, cold = specs
    assert bridge.env["FLEET_BRIDGE_METRICS_PORT"] == "1"
    assert hot.env["FLEET_HOT_METRICS_PORT"] == "2"
    assert hot.env["FLEET_HOT_DATADIR"] == str((tmp_path / "stack" / "hot").resolve())
    assert cold.env["FLEET_COLD_METRICS_PORT"] == "3"
    assert cold.env["FLEET_LAKE_DIR"] == str((tmp_path / "lake").resolve())


def test_fleet_command_uses_the_console_script_beside_python():
    argv = fleet_command("bridge")
    assert argv[-1] in ("bridge", "services.bridge")
    assert argv[0].startswith(str(sys.prefix)) or argv[0] == sys.executable


def test_up_runs_the_services_unless_told_not_to():
    assert UpSettings.from_env({}).services is True
    assert UpSettings.from_env({"FLEET_UP_SERVICES": "false"}).services is False


def test_a_lake_with_files_is_set_aside_and_an_empty_one_is_kept(tmp_path):
    lake = tmp_path / "lake"
    assert set_lake_aside(lake) is None  # none yet
    (lake / "engine").mkdir(parents=True)
    assert set_lake_aside(lake) is None  # folders but no file
    assert lake.is_dir()
    (lake / "engine" / "telemetry.engine+0+0+9.parquet").write_bytes(b"x")
    now = dt.datetime(2026, 11, 22, 9, 0, 0, tzinfo=dt.UTC)
    moved = set_lake_aside(lake, now)
    assert moved == tmp_path / "lake.20261122T090000Z"
    assert (moved / "engine" / "telemetry.engine+0+0+9.parquet").exists()
    assert not lake.exists()
    (lake / "engine").mkdir(parents=True)
    (lake / "engine" / "f.parquet").write_bytes(b"x")
    assert set_lake_aside(lake, now) == tmp_path / "lake.20261122T090000Z-2"  # nothing overwritten


def test_rate_rows_from_two_scrapes():
    before = {"fleet_hot_frames_total": 100, 'fleet_hot_alerts_total{status="raised"}': 1}
    after = {
        "fleet_hot_frames_total": 600,
        'fleet_hot_alerts_total{status="raised"}': 3,
        'fleet_hot_alerts_total{status="cleared"}': 1,
    }
    assert rate_rows("hot", before, after, 0.5) == [("frames", "600", "1,000/s"), ("alerts", "4", "6/s")]
    assert rate_rows("hot", after, before, 1.0)[0] == ("frames", "100", "restarted")
    assert rate_rows("mosquitto", before, after, 1.0) == []


def test_metric_sum_over_label_sets_only_of_that_name():
    values = {"a_total": 1, 'a_total{x="1"}': 2, "a_total_other": 50}
    assert metric_sum(values, "a_total") == 3


def test_lag_is_end_minus_committed_never_negative():
    ends = {"p0": 100, "p1": 50, "p2": 10}
    # p1: Tansu's end offset under-reports batched records, so committed can pass it
    assert lag_of({"p0": 90, "p1": 60}, ends) == 10 + 0 + 10  # p2: nothing committed: all of it
    assert lag_of({"p0": -1}, {"p0": 5}) == 5


async def test_metrics_ready_waits_for_the_condition():
    state = {"connected": 0}
    server = MetricsServer(lambda: f"fleet_bridge_mqtt_connected {state['connected']}\n", "127.0.0.1", 0)
    await server.start()
    try:
        endpoint = Endpoint("127.0.0.1", server.port)
        probe = metrics_ready(endpoint, lambda v: v.get("fleet_bridge_mqtt_connected", 0) >= 1)
        with pytest.raises(BrokerUnavailable, match="not ready yet"):
            await probe()
        state["connected"] = 1
        await probe()
        await metrics_ready(endpoint)()
    finally:
        await server.stop()
    with pytest.raises(BrokerUnavailable, match="did not answer"):
        await metrics_ready(endpoint)()
