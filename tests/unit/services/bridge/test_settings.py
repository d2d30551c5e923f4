"""FLEET_BRIDGE_* settings: defaults, derived names, and every range check naming its variable."""

from __future__ import annotations

import socket

import pytest

from schemas.validate import MAX_FRAME_BYTES
from services.bridge.settings import BridgeSettings
from services.common.errors import ConfigError


def test_defaults_when_the_environment_is_empty():
    s = BridgeSettings.from_env({})
    assert s == BridgeSettings()
    assert (s.client_id, s.topic_filter, s.share_group, s.mqtt_protocol) == ("", "fleet/#", "", "3.1.1")
    assert (s.topic_prefix, s.deadletter_topic) == ("telemetry.", "telemetry.deadletter")
    assert (s.max_inflight, s.batch_bytes, s.linger_ms, s.compression) == (2000, 65536, 0, "none")
    assert (s.max_frame_bytes, s.retry_max_s) == (MAX_FRAME_BYTES, 10.0)
    assert (s.metrics_host, s.metrics_port) == ("127.0.0.1", 9464)


def test_every_field_is_read_from_its_variable():
    s = BridgeSettings.from_env(
        {
            "FLEET_BRIDGE_CLIENT_ID": "bridge-a",
            "FLEET_BRIDGE_TOPIC_FILTER": "fleet/+/engine",
            "FLEET_BRIDGE_SHARE_GROUP": "g1",
            "FLEET_BRIDGE_MQTT_PROTOCOL": "5",
            "FLEET_BRIDGE_TOPIC_PREFIX": "cars.",
            "FLEET_BRIDGE_DEADLETTER_TOPIC": "cars.dlq",
            "FLEET_BRIDGE_MAX_INFLIGHT": "10",
            "FLEET_BRIDGE_BATCH_BYTES": "2048",
            "FLEET_BRIDGE_LINGER_MS": "5",
            "FLEET_BRIDGE_COMPRESSION": "gzip",
            "FLEET_BRIDGE_MAX_FRAME_BYTES": "64",
            "FLEET_BRIDGE_RETRY_MAX_S": "0.5",
            "FLEET_BRIDGE_METRICS_HOST": "0.0.0.0",
            "FLEET_BRIDGE_METRICS_PORT": "0",
        }
    )
    assert s == BridgeSettings(
        client_id="bridge-a",
        topic_filter="fleet/+/engine",
        share_group="g1",
        mqtt_protocol="5",
        topic_prefix="cars.",
        deadletter_topic="cars.dlq",
        max_inflight=10,
        batch_bytes=2048,
        linger_ms=5,
        compression="gzip",
        max_frame_bytes=64,
        retry_max_s=0.5,
        metrics_host="0.0.0.0",
        metrics_port=0,
    )


def test_session_id_defaults_to_the_host_name(monkeypatch):
    monkeypatch.setattr(socket, "gethostname", lambda: "car-park-7")
    assert BridgeSettings().session_id == "fleet-bridge-car-park-7"
    assert BridgeSettings(client_id="bridge-a").session_id == "bridge-a"


def test_subscription_uses_the_share_group_when_given():
    assert BridgeSettings().subscription == "fleet/#"
    assert BridgeSettings(share_group="g1").subscription == "$share/g1/fleet/#"
    assert BridgeSettings(share_group="g1", topic_filter="fleet/+/+").subscription == "$share/g1/fleet/+/+"


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("FLEET_BRIDGE_TOPIC_FILTER", "cars/#"),
        ("FLEET_BRIDGE_SHARE_GROUP", "a/b"),
        ("FLEET_BRIDGE_SHARE_GROUP", "a+"),
        ("FLEET_BRIDGE_SHARE_GROUP", "#"),
        ("FLEET_BRIDGE_MAX_INFLIGHT", "0"),
        ("FLEET_BRIDGE_MAX_INFLIGHT", "1000001"),
        ("FLEET_BRIDGE_BATCH_BYTES", "1023"),
        ("FLEET_BRIDGE_BATCH_BYTES", str(16 * 1024 * 1024 + 1)),
        ("FLEET_BRIDGE_LINGER_MS", "-1"),
        ("FLEET_BRIDGE_LINGER_MS", "10001"),
        ("FLEET_BRIDGE_MAX_FRAME_BYTES", "63"),
        ("FLEET_BRIDGE_RETRY_MAX_S", "0"),
        ("FLEET_BRIDGE_METRICS_PORT", "-1"),
        ("FLEET_BRIDGE_METRICS_PORT", "65536"),
        ("FLEET_BRIDGE_MQTT_PROTOCOL", "4"),
        ("FLEET_BRIDGE_COMPRESSION", "snappy"),
        ("FLEET_BRIDGE_MAX_INFLIGHT", "lots"),
    ],
)
def test_a_bad_value_is_a_config_error_naming_the_variable(var, value):
    with pytest.raises(ConfigError) as info:
        BridgeSettings.from_env({var: value})
    message = str(info.value)
    assert message.startswith(f"{var}=")
    assert value in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("FLEET_BRIDGE_TOPIC_FILTER", "#"),
        ("FLEET_BRIDGE_TOPIC_FILTER", "fleet/+/+"),
        ("FLEET_BRIDGE_MAX_INFLIGHT", "1"),
        ("FLEET_BRIDGE_MAX_INFLIGHT", "1000000"),
        ("FLEET_BRIDGE_BATCH_BYTES", "1024"),
        ("FLEET_BRIDGE_BATCH_BYTES", str(16 * 1024 * 1024)),
        ("FLEET_BRIDGE_LINGER_MS", "10000"),
        ("FLEET_BRIDGE_MAX_FRAME_BYTES", "64"),
        ("FLEET_BRIDGE_METRICS_PORT", "65535"),
    ],
)
def test_the_edges_of_each_range_are_accepted(var, value):
    field = var.removeprefix("FLEET_BRIDGE_").lower()
    assert str(getattr(BridgeSettings.from_env({var: value}), field)) == value
