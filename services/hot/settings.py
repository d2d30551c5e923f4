"""Settings of `fleet hot` (FLEET_HOT_*); the Kafka connection comes from KafkaSettings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from services.common.errors import ConfigError
from services.common.settings import Settings, env
from services.hot.config import DEFAULT_RULES_PATH


@dataclasses.dataclass(frozen=True)
class HotSettings(Settings):
    """What the Faust worker reads, where it writes, and where it keeps its state."""

    app_id: str = env(
        "FLEET_HOT_APP_ID", "fleet-hot", "Faust app id: the consumer group and the changelog topic's prefix"
    )
    topic_prefix: str = env("FLEET_HOT_TOPIC_PREFIX", "telemetry.", "source topics = prefix + subsystem")
    alerts_topic: str = env("FLEET_HOT_ALERTS_TOPIC", "alerts.health", "where alerts are written")
    rules: Path = env(
        "FLEET_HOT_RULES", DEFAULT_RULES_PATH, "rules YAML (overrides of the built-in defaults)"
    )
    partitions: int = env(
        "FLEET_HOT_PARTITIONS",
        6,
        "partitions of the source topics (the state table's changelog gets as many)",
    )
    replication_factor: int = env(
        "FLEET_HOT_REPLICATION_FACTOR",
        1,
        "replication of the topics Faust creates (the Table's changelog): 3 on a 3-broker cluster",
    )
    datadir: Path = env("FLEET_HOT_DATADIR", Path(".fleet/hot"), "Faust data directory (one per worker)")
    commit_interval_s: float = env("FLEET_HOT_COMMIT_INTERVAL_S", 1.0, "offset commit interval (s)")
    batch_max: int = env(
        "FLEET_HOT_BATCH_MAX",
        5000,
        "most frames per fetch evaluated together (one state write per car per batch; no wait to fill)",
    )
    timer_s: float = env("FLEET_HOT_TIMER_S", 1.0, "how often the staleness timer looks at every car (s)")
    metrics_host: str = env("FLEET_HOT_METRICS_HOST", "127.0.0.1", "address of the /metrics endpoint")
    metrics_port: int = env("FLEET_HOT_METRICS_PORT", 9465, "port of the /metrics endpoint (0: any free)")

    def validate(self) -> None:
        """Ranges the worker can run with."""
        checks = [
            (bool(self.app_id.strip()), "FLEET_HOT_APP_ID is empty"),
            (1 <= self.partitions <= 10_000, f"FLEET_HOT_PARTITIONS={self.partitions}: expected 1..10000"),
            (
                1 <= self.replication_factor <= 100,
                f"FLEET_HOT_REPLICATION_FACTOR={self.replication_factor}: expected 1..100",
            ),
            (
                0 < self.commit_interval_s <= 60,
                f"FLEET_HOT_COMMIT_INTERVAL_S={self.commit_interval_s}: expected 0..60",
            ),
            (0 < self.timer_s <= 60, f"FLEET_HOT_TIMER_S={self.timer_s}: expected 0..60"),
            (1 <= self.batch_max <= 100_000, f"FLEET_HOT_BATCH_MAX={self.batch_max}: expected 1..100000"),
            (
                0 <= self.metrics_port < 65536,
                f"FLEET_HOT_METRICS_PORT={self.metrics_port}: expected 0..65535",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
