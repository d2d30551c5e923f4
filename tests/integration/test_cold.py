"""`fleet cold` on real Tansu: every offset in the lake exactly once across kill -9, shared
partitions and compaction, as `fleet lake audit` proves."""

from __future__ import annotations

import asyncio
import random

import pytest

from services.cold import layout
from tests.helpers import run_fleet
from tests.integration.cold_support import (
    ColdProcess,
    ColdTopics,
    audit,
    duckdb_totals,
    feed,
    wait_committed,
)


@pytest.fixture
async def topics(admin, names) -> ColdTopics:  # type: ignore[no-untyped-def]
    created = ColdTopics(prefix=names("c") + ".")
    await created.create(admin)
    return created


@pytest.fixture
def cold_env(fleet_env, topics, names, tmp_path):  # type: ignore[no-untyped-def]
    """Environment of this test's writers: private topics, group and lake; small, frequent flushes."""
    return {
        **fleet_env,
        **topics.env(names("group"), tmp_path / "lake"),
        "FLEET_COLD_FLUSH_ROWS": "400",
        "FLEET_COLD_IDLE_S": "0.5",
        # a killed writer holds its partitions for a session: 2 s instead of 6 keeps restarts quick
        "FLEET_COLD_SESSION_TIMEOUT_MS": "2000",
    }


@pytest.fixture
def writers(cold_env, tmp_path, names):  # type: ignore[no-untyped-def]
    made: list[ColdProcess] = []

    def make(**extra: str) -> ColdProcess:
        writer = ColdProcess({**cold_env, **extra}, names("cold"), tmp_path)
        made.append(writer)
        return writer

    yield make
    for writer in made:
        if writer.proc is not None and writer.proc.poll() is None:
            writer.proc.kill()
            writer.proc.wait(10)


def _check_clean(verdict: dict, produced) -> None:
    bad = [p for p in verdict["partitions"] if not p["ok"]]
    assert verdict["ok"], f"audit not clean: {bad[:3]}"
    rows = {(p["topic"], p["partition"]): p for p in verdict["partitions"]}
    for tp, end in produced.ends.items():
        p = rows[(tp.topic, tp.partition)]
        assert p["committed"] == end and p["rows"] == end and p["ahead"] == 0, p


async def test_kill_9_mid_batch_five_times_then_every_offset_once(writers, kafka, topics, cold_env, tmp_path):
    writer = writers()
    writer.start()
    await writer.wait_assigned()
    # ~2,000 records/s for ~10 s; every flush spans three hours (journaled, several files)
    feeding = asyncio.ensure_future(feed(kafka, topics, 20_000, rate=2_000, bad_every=997, alert_every=50))
    kills, recovered = 0, 0
    rng = random.Random(6)
    try:
        while kills < 5:
            # kill at a random point after some flushes: renames, commits and buffers in flight
            await writer.wait_written(rng.randint(200, 1500), within_s=4)
            await asyncio.sleep(rng.uniform(0, 0.2))
            writer.kill()
            kills += 1
            writer.start()
            await writer.wait_assigned()
            recovered += (await writer.metrics())["fleet_cold_recovered_partitions_total"] > 0
        produced = await feeding
    finally:
        feeding.cancel()
    assert recovered >= 4, "restarts should resume from positions read in the lake"
    committed = await wait_committed(kafka, cold_env["FLEET_COLD_GROUP_ID"], topics, produced.ends)
    assert writer.stop() == 0, writer.log_tail()
    verdict = audit(cold_env)
    _check_clean(verdict, produced)
    lake = tmp_path / "lake"
    assert duckdb_totals(lake) == (produced.records - produced.bad - produced.alerts, produced.seq_sum)
    assert (
        sum(
            len(layout.scan_folder(lake / "_rejects" / s))
            for s in ("engine", "transmission", "electronics", "chassis", "infotainment")
        )
        > 0
    )
    assert not list(lake.rglob(".*.w.tmp")), "temp files left behind"
    print(f"killed {kills}x; {produced.records} records in {len(committed)} partitions audited clean")


async def test_two_writers_sharing_partitions_audit_clean(writers, kafka, topics, cold_env):
    first, second = writers(), writers()
    first.start()
    await first.wait_assigned()
    feeding = asyncio.ensure_future(feed(kafka, topics, 16_000, rate=2_000))
    try:
        await first.wait_written(500, within_s=5)
        second.start()  # rebalance: first flushes and commits what it gives up
        await second.wait_assigned()
        assert await second.wait_written(500, within_s=5) >= 500
        first_rows = (await first.metrics())["fleet_cold_rows_written_total"]
        assert first.stop() == 0, first.log_tail()  # rebalance again: second takes everything
        first.start()  # and a third time, back to sharing
        await first.wait_assigned()
        produced = await feeding
    finally:
        feeding.cancel()
    await wait_committed(kafka, cold_env["FLEET_COLD_GROUP_ID"], topics, produced.ends)
    assert first_rows > 0
    assert second.stop() == 0 and first.stop() == 0
    _check_clean(audit(cold_env), produced)


async def test_compaction_keeps_the_audit_clean_and_query_totals_unchanged(
    writers, kafka, topics, cold_env, tmp_path
):
    writer = writers()
    writer.start()
    await writer.wait_assigned()
    produced = None
    for _ in range(3):  # three rounds, each flushed and committed: several files per hour and partition
        produced = await feed(kafka, topics, 2_000, hours=4, bad_every=499, alert_every=40, produced=produced)
        await wait_committed(kafka, cold_env["FLEET_COLD_GROUP_ID"], topics, produced.ends)
    assert produced is not None
    assert writer.stop() == 0
    lake = tmp_path / "lake"
    totals = duckdb_totals(lake)
    files_before = sum(1 for _ in lake.rglob("*.parquet"))
    _check_clean(audit(cold_env), produced)

    result = run_fleet(["lake", "compact", "--compact-grace-s", "0", "--json"], env=cold_env)
    assert result.returncode == 0, result.stderr
    files_after = sum(1 for _ in lake.rglob("*.parquet"))
    assert files_after < files_before
    # every closed hour (the frames' hours, days ago): one file per folder and partition
    telemetry = [p for p in lake.rglob("*.parquet") if "_rejects" not in p.parts]
    assert len(telemetry) == len({(p.parent, p.name.split("+")[1]) for p in telemetry})
    assert (
        duckdb_totals(lake) == totals == (produced.records - produced.bad - produced.alerts, produced.seq_sum)
    )
    _check_clean(audit(cold_env), produced)
    # the writer resumes after compaction where it left off: nothing read again, nothing skipped
    writer.start()
    await writer.wait_assigned()
    more = await feed(kafka, topics, 600, hours=1)
    for tp, end in more.ends.items():
        produced.ends[tp] = end
    await wait_committed(kafka, cold_env["FLEET_COLD_GROUP_ID"], topics, produced.ends)
    metrics = await writer.metrics()
    assert metrics["fleet_cold_skipped_total"] == 0 and metrics["fleet_cold_consumed_total"] == 600
    assert writer.stop() == 0
    _check_clean(audit(cold_env), produced)
