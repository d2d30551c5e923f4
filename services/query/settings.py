"""Settings of `fleet query` (FLEET_QUERY_*); the lake's root comes from LakeSettings."""

from __future__ import annotations

import dataclasses

from services.common.errors import ConfigError
from services.common.settings import Settings, env


@dataclasses.dataclass(frozen=True)
class QuerySettings(Settings):
    """How the canned queries cut trips and which cars they rank."""

    stop_s: float = env(
        "FLEET_QUERY_STOP_S",
        300.0,
        "standing still this long (s) with the engine running ends a trip (a long stop)",
    )
    gap_s: float = env(
        "FLEET_QUERY_GAP_S",
        60.0,
        "no frame for this long (s) ends a trip; the counters' change across the gap is not attributed",
    )
    min_km: float = env(
        "FLEET_QUERY_MIN_KM", 1.0, "cars that drove less (km) in the range are left out of the leaderboard"
    )
    threads: int = env("FLEET_QUERY_THREADS", 0, "DuckDB threads (0: one per core)")
    rollups: bool = env(
        "FLEET_QUERY_ROLLUPS",
        True,
        "leaderboard and by-mode take each car's counter range from the files' footers where a file lies "
        "wholly in the range (false: scan every row)",
    )

    def validate(self) -> None:
        """Ranges the queries can work with."""
        checks = [
            (self.stop_s > 0, f"FLEET_QUERY_STOP_S={self.stop_s}: expected > 0"),
            (self.gap_s > 0, f"FLEET_QUERY_GAP_S={self.gap_s}: expected > 0"),
            (self.min_km >= 0, f"FLEET_QUERY_MIN_KM={self.min_km}: expected >= 0"),
            (self.threads >= 0, f"FLEET_QUERY_THREADS={self.threads}: expected >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)
