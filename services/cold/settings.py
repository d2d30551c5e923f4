"""Settings of `fleet cold` and `fleet lake` (FLEET_COLD_*); the lake root is `LakeSettings`."""

from __future__ import annotations

import dataclasses

from schemas.catalog import SUBSYSTEMS
from services.common.errors import ConfigError
from services.common.settings import Settings, env

# Parquet codecs offered. zstd is the default by measurement (100k engine frames, pyarrow 26):
# none 0.36 us/row 3.2 MB, snappy 0.39 us 2.5 MB, lz4 0.41 us 2.5 MB, zstd(1) 0.43 us 2.5 MB,
# zstd(3) 0.54 us 2.0 MB. The raw JSON was 34.8 MB.
COMPRESSIONS = ("zstd", "snappy", "lz4", "none")
ZSTD_LEVEL = 3

ALERTS_KIND = "alerts"


@dataclasses.dataclass(frozen=True)
class ColdSettings(Settings):
    """The cold path's consumer group, topics, flush triggers and Parquet layout."""

    group_id: str = env("FLEET_COLD_GROUP_ID", "fleet-cold", "consumer group of the lake writers")
    topic_prefix: str = env("FLEET_COLD_TOPIC_PREFIX", "telemetry.", "telemetry topics = prefix + subsystem")
    alerts_topic: str = env(
        "FLEET_COLD_ALERTS_TOPIC", "alerts.health", "alert topic archived to <lake>/alerts (empty: none)"
    )
    flush_rows: int = env("FLEET_COLD_FLUSH_ROWS", 250_000, "flush a partition at this many buffered records")
    flush_bytes: int = env(
        "FLEET_COLD_FLUSH_BYTES", 64 * 1024 * 1024, "flush a partition at this many buffered value bytes"
    )
    flush_span_s: float = env(
        "FLEET_COLD_FLUSH_SPAN_S",
        120.0,
        "flush a partition when its buffer spans this much Kafka record time (s)",
    )
    idle_s: float = env(
        "FLEET_COLD_IDLE_S", 5.0, "flush a partition that received nothing for this long (wall s)"
    )
    memory_budget_bytes: int = env(
        "FLEET_COLD_MEMORY_BUDGET_BYTES",
        512 * 1024 * 1024,
        "above this many buffered bytes, flush the largest partitions and pause fetching",
    )
    compression: str = env(
        "FLEET_COLD_COMPRESSION", "zstd", "Parquet compression (zstd: level 3)", choices=COMPRESSIONS
    )
    row_group_rows: int = env(
        "FLEET_COLD_ROW_GROUP_ROWS", 250_000, "Parquet row group size (rows), 100000..1000000"
    )
    dedup_window: int = env(
        "FLEET_COLD_DEDUP_WINDOW",
        10_000,
        "frames per partition whose (vin, seq, ts) is remembered to drop redelivered copies (0: off)",
    )
    compact_grace_s: float = env(
        "FLEET_COLD_COMPACT_GRACE_S",
        900.0,
        "compaction merges hours that ended at least this long ago (s)",
    )
    session_timeout_ms: int = env(
        "FLEET_COLD_SESSION_TIMEOUT_MS",
        6000,
        "group session timeout: how long a dead writer holds its partitions (ms; Kafka's minimum is 6000)",
    )
    metrics_host: str = env("FLEET_COLD_METRICS_HOST", "127.0.0.1", "address of the /metrics endpoint")
    metrics_port: int = env("FLEET_COLD_METRICS_PORT", 9466, "port of the /metrics endpoint (0: any free)")

    def validate(self) -> None:
        """Ranges the writer can run with."""
        checks = [
            (bool(self.group_id.strip()), "FLEET_COLD_GROUP_ID is empty"),
            (
                self.flush_rows >= 1,
                f"FLEET_COLD_FLUSH_ROWS={self.flush_rows}: expected >= 1",
            ),
            (
                self.flush_bytes >= 1024,
                f"FLEET_COLD_FLUSH_BYTES={self.flush_bytes}: expected >= 1024",
            ),
            (self.flush_span_s > 0, f"FLEET_COLD_FLUSH_SPAN_S={self.flush_span_s}: expected > 0"),
            (self.idle_s > 0, f"FLEET_COLD_IDLE_S={self.idle_s}: expected > 0"),
            (
                self.memory_budget_bytes >= self.flush_bytes,
                f"FLEET_COLD_MEMORY_BUDGET_BYTES={self.memory_budget_bytes}: expected >= "
                f"FLEET_COLD_FLUSH_BYTES ({self.flush_bytes})",
            ),
            (
                100_000 <= self.row_group_rows <= 1_000_000,
                f"FLEET_COLD_ROW_GROUP_ROWS={self.row_group_rows}: expected 100000..1000000",
            ),
            (
                0 <= self.dedup_window <= 10_000_000,
                f"FLEET_COLD_DEDUP_WINDOW={self.dedup_window}: expected 0..10000000",
            ),
            (
                self.compact_grace_s >= 0,
                f"FLEET_COLD_COMPACT_GRACE_S={self.compact_grace_s}: expected >= 0",
            ),
            (
                1000 <= self.session_timeout_ms <= 300_000,
                f"FLEET_COLD_SESSION_TIMEOUT_MS={self.session_timeout_ms}: expected 1000..300000",
            ),
            (
                0 <= self.metrics_port < 65536,
                f"FLEET_COLD_METRICS_PORT={self.metrics_port}: expected 0..65535",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    @property
    def kinds(self) -> dict[str, str]:
        """{topic: lake kind}: each telemetry topic to its subsystem, the alert topic to `alerts`."""
        topics = {self.topic_prefix + sub: str(sub) for sub in SUBSYSTEMS}
        if self.alerts_topic:
            topics[self.alerts_topic] = ALERTS_KIND
        return topics
