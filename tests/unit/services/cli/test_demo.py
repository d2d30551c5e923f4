"""`fleet demo` and `fleet up/status` flags, and the demo's rendering, without brokers."""

import io

from rich.console import Console

from services.cli.demo import CountingSink, lake_check, view
from services.hot.watch import AlertBoard
from services.stack.demo import Demo, DemoSettings, LakeCount, Report, Snapshot
from services.stack.pipeline import Endpoint, MetricsEndpoints
from tests.helpers import run_fleet


def test_demo_help_shows_env_names_and_defaults():
    result = run_fleet(["demo", "--help"])
    assert result.returncode == 0
    for text in ("FLEET_DEMO_CARS", "default 100", "FLEET_DEMO_SECONDS", "default 90.0", "FLEET_DEMO_SEED"):
        assert text in result.stdout
    assert "FLEET_STACK_KAFKA_PORT" in result.stdout and "FLEET_LAKE_DIR" in result.stdout


def test_a_bad_flag_or_value_is_one_line():
    bad = run_fleet(["demo", "--cars", "many"])
    assert bad.returncode == 2
    assert bad.stderr.strip() == "fleet: error: --cars='many': expected an integer"
    unknown = run_fleet(["demo", "--no-such-flag"])
    assert unknown.returncode == 2
    assert unknown.stderr.strip().count("\n") == 0
    zero = run_fleet(["demo", "--seconds", "0"])
    assert zero.returncode == 2
    assert zero.stderr.strip() == "fleet: error: FLEET_DEMO_SECONDS=0.0: expected > 0"


def test_up_has_no_services_flag_and_status_an_interval():
    up = run_fleet(["up", "--help"])
    assert "--no-services" in up.stdout and "FLEET_UP_SERVICES" in up.stdout
    status = run_fleet(["status", "--help"])
    assert "--interval" in status.stdout


class ListSink:
    def __init__(self):
        self.topics = []

    def publish(self, topic, payload):
        self.topics.append(topic)

    def congested(self):
        return False

    def pending(self):
        return 0

    def close(self, within_s):
        return 0


def test_counting_sink_counts_only_what_the_bridge_subscribes_to():
    inner = ListSink()
    sink = CountingSink(inner, "fleet/#")
    for topic in ("fleet/V1/engine", "fleet/V1", "cars/V1/engine", "fleet/V1/engine/extra"):
        sink.publish(topic, b"{}")
    assert len(inner.topics) == 4  # everything is still published
    assert sink.for_bridge == 3  # cars/... is outside fleet/#: nothing reads it


def snapshot(produced, alerts):
    return Snapshot(
        0.0,
        produced,
        {"fleet_bridge_produced_total": produced},
        {'fleet_hot_alerts_total{status="raised"}': alerts},
        None,
    )


def test_lake_check_wants_a_row_per_record():
    ok, line = lake_check(Report(final=snapshot(1000, 7), lake=LakeCount(1000, 7)))
    assert ok
    assert line == "lake: 1,000 frames and 7 alert records = 1,000 produced by the bridge and 7 sent by hot"
    ok, line = lake_check(Report(final=snapshot(1000, 7), lake=LakeCount(990, 7)))
    assert not ok and " < " in line
    ok, _ = lake_check(Report(final=snapshot(1000, 7), lake=LakeCount(1002, 7)))  # redelivered: at least
    assert ok
    assert lake_check(Report()) == (False, "the lake was not counted")


def test_the_live_view_renders_before_and_after_the_first_scrape():
    endpoints = MetricsEndpoints(*(Endpoint("127.0.0.1", 1) for _ in range(3)))
    demo = Demo(DemoSettings(), None, endpoints, lambda: None)  # type: ignore[arg-type]
    console = Console(width=120, record=True, file=io.StringIO())
    console.print(view(demo, AlertBoard(), ["Kafka not answering"]))
    demo.snapshots.append(snapshot(1234, 2))
    console.print(view(demo, AlertBoard()))
    text = console.export_text()
    assert "starting" in text and "Kafka not answering" in text
    assert "simulator" in text and "1,234" in text
    assert "alerts.health: 0 open" in text
