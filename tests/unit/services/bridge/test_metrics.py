"""The bridge's counters: Prometheus exposition and the accounting identity."""

from __future__ import annotations

import collections

import pytest

from services.bridge.metrics import BridgeMetrics
from services.common.metrics import parse_text

COUNTERS = ["received", "produced", "released", "acked", "kafka_errors", "mqtt_disconnects", "paused"]


def types_of(text: str) -> dict[str, str]:
    return {line.split()[2]: line.split()[3] for line in text.splitlines() if line.startswith("# TYPE ")}


def test_render_has_every_counter_gauge_reason_and_the_histogram():
    m = BridgeMetrics(
        received=120,
        produced=100,
        deadlettered=collections.Counter({"parse_error": 7, "bad_vin": 3}),
        released=4,
        acked=105,
        kafka_errors=1,
        mqtt_disconnects=2,
        paused=5,
        in_flight=6,
        mqtt_connected=True,
    )
    for seconds in (0.0005, 0.003, 0.003, 40.0):
        m.latency.observe(seconds)
    text = m.render()
    values = parse_text(text)

    for name in COUNTERS:
        assert values[f"fleet_bridge_{name}_total"] == getattr(m, name), name
        assert types_of(text)[f"fleet_bridge_{name}_total"] == "counter"
    assert values["fleet_bridge_in_flight"] == 6
    assert values["fleet_bridge_mqtt_connected"] == 1
    assert types_of(text)["fleet_bridge_in_flight"] == "gauge"
    assert values['fleet_bridge_deadlettered_total{reason="parse_error"}'] == 7
    assert values['fleet_bridge_deadlettered_total{reason="bad_vin"}'] == 3
    assert types_of(text)["fleet_bridge_deadlettered_total"] == "counter"

    assert types_of(text)["fleet_bridge_latency_seconds"] == "histogram"
    assert values['fleet_bridge_latency_seconds_bucket{le="0.001"}'] == 1
    assert values['fleet_bridge_latency_seconds_bucket{le="0.005"}'] == 3
    assert values['fleet_bridge_latency_seconds_bucket{le="30"}'] == 3
    assert values['fleet_bridge_latency_seconds_bucket{le="+Inf"}'] == 4
    assert values["fleet_bridge_latency_seconds_count"] == 4
    assert values["fleet_bridge_latency_seconds_sum"] == pytest.approx(40.0065)
    assert text.endswith("\n")


def test_a_fresh_bridge_renders_zeros_and_no_reason_samples():
    values = parse_text(BridgeMetrics().render())
    assert values["fleet_bridge_received_total"] == 0
    assert values["fleet_bridge_mqtt_connected"] == 0
    assert not [k for k in values if k.startswith("fleet_bridge_deadlettered_total")]
    assert values['fleet_bridge_latency_seconds_bucket{le="+Inf"}'] == 0


def test_every_sample_has_help_and_type():
    text = BridgeMetrics(deadlettered=collections.Counter({"oversize": 1})).render()
    helped = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    typed = set(types_of(text))
    assert helped == typed
    for key in parse_text(text):
        family = key.split("{")[0].removesuffix("_bucket").removesuffix("_sum").removesuffix("_count")
        assert family in typed, key


def test_balanced_holds_for_every_message_in_exactly_one_state():
    m = BridgeMetrics()
    assert m.balanced()
    m.received = 10
    assert not m.balanced()
    m.produced, m.in_flight, m.released = 4, 2, 1
    m.deadlettered["bad_topic"] += 2
    m.deadlettered["oversize"] += 1
    assert m.deadlettered_total == 3
    assert m.balanced()
    m.acked = 99  # PUBACKs are not a state of a message: they do not enter the identity
    assert m.balanced()
    m.in_flight -= 1
    assert not m.balanced()
