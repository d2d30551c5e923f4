"""The filters every canned query takes: a time range on event time and a set of cars.

    Filters.parse(since="2026-11-17", until="2026-11-17T12:00Z", vins=["1FLEET00000000042"])
    Filters.parse(since="2h", now=now)       # two hours before now
    f.where("ts")  ->  ("ts >= $since AND date >= CAST($since AS DATE) AND ...", {"since": ...})

Times are UTC: a time written without an offset is taken as UTC (the lake's partitions are UTC).
The range is half-open, [since, until). The `date` predicates repeat the range on the partition
column so DuckDB skips the files of other days without opening them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Sequence
from typing import Any

from services.common.errors import ConfigError

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_time(raw: str, flag: str, now: dt.datetime) -> dt.datetime:
    """ISO date or date-time (UTC unless it says otherwise), `now`, or an age such as 30m, 2h, 7d."""
    text = raw.strip()
    if text == "now":
        return now
    rel = _RELATIVE.match(text)
    if rel:
        return now - dt.timedelta(seconds=float(rel.group(1)) * _UNIT_S[rel.group(2)])
    try:
        value = dt.datetime.fromisoformat(text.replace(" ", "T", 1) if len(text) > 10 else text)
    except ValueError:
        raise ConfigError(
            f"{flag} {raw!r}: expected an ISO date or time (2026-11-17, 2026-11-17T10:00Z), now, "
            "or an age (30m, 2h, 7d)"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True)
class Filters:
    """[since, until) on event time (`ts`) and, if given, only these VINs."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    vins: tuple[str, ...] = ()

    @classmethod
    def parse(
        cls,
        since: str | None = None,
        until: str | None = None,
        vins: Sequence[str] = (),
        now: dt.datetime | None = None,
    ) -> Filters:
        """Build from CLI text; a bad time or an empty range is a ConfigError naming the flag."""
        now = now or dt.datetime.now(dt.UTC)
        start = parse_time(since, "--since", now) if since else None
        end = parse_time(until, "--until", now) if until else None
        if start is not None and end is not None and start >= end:
            raise ConfigError(f"--since {since!r} is not before --until {until!r}: the range is empty")
        for vin in vins:
            if not vin.strip():
                raise ConfigError("--vin: expected a VIN, got an empty string")
        return cls(start, end, tuple(v.strip() for v in vins))

    def where(self, ts_column: str = "ts", *, since: bool = True) -> str:
        """SQL predicate of these filters (parameters $since, $until, $vins; see `params`)."""
        parts = ["TRUE"]
        if since and self.since is not None:
            parts += [f"{ts_column} >= $since", "date >= CAST($since AS DATE)"]
        if self.until is not None:
            parts += [f"{ts_column} < $until", "date <= CAST($until AS DATE)"]
        if self.vins:
            parts.append("list_contains($vins, vin)")
        return " AND ".join(parts)

    def params(self, sql: str) -> dict[str, Any]:
        """The parameters `sql` uses (DuckDB refuses unused named parameters)."""
        values: dict[str, Any] = {"since": self.since, "until": self.until, "vins": list(self.vins)}
        return {name: value for name, value in values.items() if f"${name}" in sql}
