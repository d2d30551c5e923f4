"""The cold writer's counters, and their Prometheus names.

Every consumed record is, at any moment, buffered, written (a row or a reject in a renamed
file), skipped (already in the lake: consumed again below the recovered position) or dropped
(its partition was revoked and its flush failed: the next owner reads it again). So, always:

    consumed == buffered + rows_written + rejects_written + skipped + dropped
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable

from services.cold.buffer import TRIGGERS
from services.common.metrics import Histogram, metric_lines

FLUSH_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclasses.dataclass
class ColdMetrics:
    """Counters of one writer process (monotonic since start, except the gauges)."""

    consumed: int = 0
    rows_written: int = 0
    rejects_written: int = 0
    duplicates_dropped: int = 0  # redelivered frames, counted in rejects_written too
    skipped: int = 0
    dropped: int = 0
    files_written: int = 0
    flushes: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    flush_errors: int = 0
    commits: int = 0
    commit_failures: int = 0
    recovered_partitions: int = 0
    buffered: int = 0  # records
    buffered_bytes: int = 0
    paused_partitions: int = 0
    assigned_partitions: int = 0
    flush_seconds: Histogram = dataclasses.field(default_factory=lambda: Histogram(FLUSH_BUCKETS_S))
    lag: Callable[[], int] | None = None  # records behind the high watermark, when known

    def balanced(self) -> bool:
        """The accounting identity of the module docstring."""
        done = self.rows_written + self.rejects_written + self.skipped + self.dropped
        return self.consumed == self.buffered + done

    def render(self) -> str:
        """Prometheus text exposition."""
        lines: list[str] = []
        simple = [
            ("consumed", "counter", "records read from Kafka", self.consumed),
            ("rows_written", "counter", "rows in lake files renamed into place", self.rows_written),
            (
                "rejects_written",
                "counter",
                "records that could not be typed, kept in <lake>/_rejects",
                self.rejects_written,
            ),
            (
                "duplicates_dropped",
                "counter",
                "redelivered frames (same vin, seq, ts) kept in <lake>/_rejects instead of the tables",
                self.duplicates_dropped,
            ),
            (
                "skipped",
                "counter",
                "records read again below the position recovered from the lake",
                self.skipped,
            ),
            (
                "dropped",
                "counter",
                "buffered records of a revoked partition whose flush failed",
                self.dropped,
            ),
            ("files_written", "counter", "Parquet files renamed into the lake", self.files_written),
            (
                "flush_errors",
                "counter",
                "failed flushes (records kept, partitions paused, retried)",
                self.flush_errors,
            ),
            ("commits", "counter", "offset commits after a flush", self.commits),
            (
                "commit_failures",
                "counter",
                "offset commits refused (the lake stays the truth)",
                self.commit_failures,
            ),
            (
                "recovered_partitions",
                "counter",
                "partitions whose position came from the lake",
                self.recovered_partitions,
            ),
            ("buffered_records", "gauge", "records waiting for a flush", self.buffered),
            ("buffered_bytes", "gauge", "memory held by buffered records (budgeted)", self.buffered_bytes),
            (
                "paused_partitions",
                "gauge",
                "partitions not fetched (memory or write trouble)",
                self.paused_partitions,
            ),
            ("assigned_partitions", "gauge", "partitions this writer owns", self.assigned_partitions),
        ]
        if self.lag is not None:
            simple.append(
                (
                    "lag_records",
                    "gauge",
                    "records behind the high watermark (Tansu under-reports it)",
                    self.lag(),
                )
            )
        for name, kind, text, value in simple:
            suffix = "_total" if kind == "counter" else ""
            lines += metric_lines(f"fleet_cold_{name}{suffix}", kind, text, [({}, value)])
        lines += metric_lines(
            "fleet_cold_flushes_total",
            "counter",
            "partition flushes, by trigger",
            [({"trigger": t}, self.flushes[t]) for t in TRIGGERS],
        )
        lines += self.flush_seconds.lines(
            "fleet_cold_flush_seconds", "decode + write + fsync + rename of one flush"
        )
        return "\n".join(lines) + "\n"
