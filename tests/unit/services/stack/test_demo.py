"""The demo's pure rules: counters, rates, when the pipeline has caught up, the view's rows; and the
phases driven with fakes (real /metrics endpoints on free ports, no broker)."""

import asyncio

import pytest

from services.common.errors import ConfigError, ProcessDied
from services.common.metrics import MetricsServer
from services.stack.demo import (
    CatchUp,
    Demo,
    DemoSettings,
    LakeCount,
    Snapshot,
    behind,
    rates,
    stage_rows,
)
from services.stack.pipeline import Endpoint, MetricsEndpoints


def bridge(received=0, produced=0, dead=0, in_flight=0):
    return {
        "fleet_bridge_received_total": received,
        "fleet_bridge_produced_total": produced,
        'fleet_bridge_deadlettered_total{reason="parse_error"}': dead,
        "fleet_bridge_in_flight": in_flight,
    }


def hot(frames=0, skipped=0, raised=0, cleared=0):
    return {
        "fleet_hot_frames_total": frames,
        "fleet_hot_skipped_total": skipped,
        'fleet_hot_alerts_total{status="raised"}': raised,
        'fleet_hot_alerts_total{status="cleared"}': cleared,
    }


def cold(consumed=0, rows=0, buffered=0):
    return {
        "fleet_cold_consumed_total": consumed,
        "fleet_cold_rows_written_total": rows,
        "fleet_cold_buffered_records": buffered,
    }


def snap(t, published=100, b=None, h=None, c=None):
    return Snapshot(
        t,
        published,
        bridge(100, 98, 2) if b is None else b,
        hot(98, 0, 3, 1) if h is None else h,
        cold(102, 102) if c is None else c,
    )


def test_counters_sum_labelled_series():
    counters = snap(0.0).counters()
    assert counters["hot_alerts"] == 4  # raised + cleared
    assert counters["bridge_deadlettered"] == 2
    assert counters["cold_consumed"] == 102


def test_a_stage_without_metrics_has_unknown_counters():
    counters = Snapshot(0.0, 5, None, None, None).counters()
    assert counters["published"] == 5
    assert counters["bridge_received"] is None


def test_rates_are_per_second_between_two_snapshots():
    a = snap(10.0, 100, bridge(100, 90), hot(80), cold(50, 0))
    b = snap(12.0, 300, bridge(280, 270), hot(200), cold(150, 100))
    per_s = rates(a, b)
    assert per_s["published"] == 100
    assert per_s["bridge_produced"] == 90
    assert per_s["hot_frames"] == 60
    assert per_s["cold_rows"] == 50


def test_no_rate_without_a_previous_snapshot_a_time_step_or_after_a_restart():
    b = snap(12.0, 300, bridge(280, 270))
    assert set(rates(None, b).values()) == {None}
    assert set(rates(b, b).values()) == {None}  # no time passed
    restarted = snap(13.0, 400, bridge(10, 10))  # the bridge's counters started again
    assert rates(b, restarted)["bridge_received"] is None
    assert rates(b, restarted)["published"] == 100


def test_behind_names_each_stage_that_has_not_seen_everything():
    done = snap(0.0, 100, bridge(100, 98, 2), hot(98, 0, 3, 1), cold(102))
    assert behind(done) == []
    reasons = behind(snap(0.0, 100, bridge(90, 80, 2, in_flight=8), hot(70), cold(60)))
    assert reasons == [
        "bridge: 10 published messages not read yet",
        "bridge: 8 in flight",
        "hot: 10 frames to evaluate",
        "cold: 20 records to read",
    ]


def test_hot_skipped_records_count_as_seen():
    assert behind(snap(0.0, 100, bridge(100, 100), hot(97, skipped=3), cold(100))) == []


def test_redelivered_duplicates_do_not_keep_the_demo_waiting():
    # at-least-once: the bridge may read a message twice, hot and cold may see a record twice
    assert behind(snap(0.0, 100, bridge(104, 102, 2), hot(110), cold(120))) == []


def test_a_silent_endpoint_is_not_caught_up():
    assert behind(Snapshot(0.0, 10, bridge(10, 10), None, cold(10))) == ["hot: /metrics not answering"]


def test_caught_up_only_after_the_counters_stay_still_for_settle_s():
    rule = CatchUp(settle_s=3.0)
    assert not rule.observe(snap(0.0)).caught_up
    assert not rule.observe(snap(2.9)).caught_up
    verdict = rule.observe(snap(3.0))
    assert verdict == verdict.__class__(True, ())


def test_any_counter_moving_restarts_the_quiet_period():
    rule = CatchUp(settle_s=3.0)
    rule.observe(snap(0.0))
    # a late alert (e.g. a staleness timer) and cold reading it
    rule.observe(snap(2.0, h=hot(98, 0, 4, 1), c=cold(103, 102)))
    verdict = rule.observe(snap(4.0, h=hot(98, 0, 4, 1), c=cold(103, 102)))
    assert not verdict.caught_up
    assert "counters moved 2.0 s ago" in verdict.waiting[0]
    assert rule.observe(snap(5.0, h=hot(98, 0, 4, 1), c=cold(103, 102))).caught_up


def test_quiet_but_behind_is_not_caught_up():
    rule = CatchUp(settle_s=1.0)
    stuck = snap(0.0, 100, bridge(100, 100), hot(50), cold(50))
    rule.observe(stuck)
    verdict = rule.observe(snap(10.0, 100, bridge(100, 100), hot(50), cold(50)))
    assert verdict.waiting == ("hot: 50 frames to evaluate", "cold: 50 records to read")


def test_stage_rows_show_totals_and_rates_in_pipeline_order():
    rows = stage_rows(snap(0.0), {"published": 1234.4, "bridge_received": None})
    assert rows[0] == ("simulator", "published", "100", "1,234/s")
    assert rows[1] == ("bridge", "received", "100", "")
    assert rows[2][0] == ""  # the stage name only on its first row
    assert [r[1] for r in rows] == [
        "published",
        "received",
        "produced",
        "dead-lettered",
        "frames evaluated",
        "alerts sent",
        "records read",
        "rows in the lake",
    ]
    unknown = stage_rows(Snapshot(0.0, 0, None, None, None), {})
    assert unknown[1] == ("bridge", "received", "-", "")


def test_settings_defaults_and_env_names():
    s = DemoSettings.from_env({})
    assert (s.cars, s.seconds, s.seed) == (100, 90.0, 1)
    assert s.vehicle_s == s.seconds * s.speedup
    assert DemoSettings.from_env({"FLEET_DEMO_CARS": "7"}).cars == 7
    names = [var for var, _, _ in DemoSettings.describe()]
    assert {"FLEET_DEMO_CARS", "FLEET_DEMO_SECONDS", "FLEET_DEMO_SPEEDUP", "FLEET_DEMO_SEED"} <= set(names)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"FLEET_DEMO_CARS": "0"}, "FLEET_DEMO_CARS=0: expected >= 1"),
        ({"FLEET_DEMO_SECONDS": "0"}, "FLEET_DEMO_SECONDS=0.0: expected > 0"),
        ({"FLEET_DEMO_BAD_RATE": "2"}, "FLEET_DEMO_BAD_RATE=2.0: expected 0..1"),
        ({"FLEET_DEMO_SPEEDUP": "x"}, "FLEET_DEMO_SPEEDUP='x': expected a number"),
    ],
)
def test_bad_settings_are_one_line(env, message):
    with pytest.raises(ConfigError) as info:
        DemoSettings.from_env(env)
    assert str(info.value) == message


# --- the phases, with fakes ------------------------------------------------------------------------


class FakeStack:
    """What Demo uses of Stack; `die` makes wait() report a dead child."""

    def __init__(self, die=False):
        self.calls = []
        self.die = die

    async def start(self):
        self.calls.append("start")

    async def wait(self):
        if self.die:
            await asyncio.sleep(0.05)
            raise ProcessDied("hot exited with code 1")
        await asyncio.Event().wait()

    async def stop_child(self, name):
        self.calls.append(f"stop_child {name}")
        return 0

    async def stop(self):
        self.calls.append("stop")


class FakeSim:
    def __init__(self, counters):
        self.counters = counters
        self.stopped = 0

    async def wait(self):
        while True:  # publishes 10 messages per 10 ms until stopped
            self.counters["published"] += 10
            await asyncio.sleep(0.01)

    async def stop(self):
        self.stopped += 1

    def published(self):
        return self.counters["published"]

    def driven_s(self):
        return 1.0


async def serve(render):
    server = MetricsServer(render, "127.0.0.1", 0)
    await server.start()
    return server


async def test_the_phases_run_in_order_and_cold_is_stopped_before_the_lake_is_counted():
    state = {"published": 0}

    def lines(values):
        return "\n".join(f"{k} {v}" for k, v in values.items()) + "\n"

    # every stage has seen everything the simulator published, always
    servers = [
        await serve(lambda: lines(bridge(state["published"], state["published"]))),
        await serve(lambda: lines(hot(state["published"]))),
        await serve(lambda: lines(cold(state["published"], state["published"]))),
    ]
    endpoints = MetricsEndpoints(*(Endpoint("127.0.0.1", s.port) for s in servers))
    stack = FakeStack()
    sim = FakeSim(state)
    counted = []

    def count():
        counted.append(list(stack.calls))
        return LakeCount(state["published"], 0)

    settings = DemoSettings(seconds=0.3, settle_s=0.6, catchup_timeout_s=10)
    demo = Demo(settings, stack, endpoints, lambda: sim, count_lake=count)  # type: ignore[arg-type]
    try:
        await demo.start()
        await asyncio.wait_for(demo.wait(), 15)
        await demo.stop()
        await demo.stop()  # safe twice
    finally:
        for server in servers:
            await server.stop()
    assert demo.phase == "done"
    assert demo.report.caught_up
    assert demo.report.final is not None and demo.report.final.published == state["published"] > 0
    assert counted == [["start", "stop_child cold"]]  # the lake is counted after cold flushed
    assert stack.calls == ["start", "stop_child cold", "stop"]
    assert demo.report.lake == LakeCount(state["published"], 0)
    assert sim.stopped >= 1


async def test_a_child_dying_mid_run_ends_the_demo_with_its_error():
    state = {"published": 0}
    endpoints = MetricsEndpoints(*(Endpoint("127.0.0.1", 1) for _ in range(3)))  # nothing answers
    stack = FakeStack(die=True)
    demo = Demo(DemoSettings(seconds=5), stack, endpoints, lambda: FakeSim(state))  # type: ignore[arg-type]
    await demo.start()
    with pytest.raises(ProcessDied, match="hot exited"):
        await asyncio.wait_for(demo.wait(), 5)
    await demo.stop()
    assert demo.interrupted_in == "simulating"
    assert stack.calls[-1] == "stop"
