"""Faust on the Kafka-protocol broker: a worker with a Table becomes ready, processes, and
recovers its Table from the changelog after a kill -9.

The hot path stands on exactly this. Group timings come from
services.common.kafka.FAUST_GROUP_SETTINGS; `fleet bench stack` measures the join time beside
Faust's defaults.
"""

from __future__ import annotations

from bench.faust_join import measure


async def test_faust_worker_with_table_becomes_ready_and_recovers_after_kill(kafka, names, tmp_path):
    timings = await measure(kafka, tmp_path, names("counter"), peer=False, within_s=90)
    # measure() asserts the counts (1 on a cold start, 2 after kill -9: Table recovered from
    # its changelog); timings are reported, never asserted (benchmarks do that, not tests).
    print(f"faust with our settings: {timings}")
