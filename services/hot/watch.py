"""Watching `alerts.health`: fold alert records into the open episodes, deduplicated and filtered.

    board = AlertBoard(AlertFilter(min_severity="warning"))
    for value in record_values:
        alert = parse_record(value)          # ValueError: not an Alert
        if board.apply(alert) == "shown":    # else a redelivery, a replay or filtered out
            print(event_line(alert))
    [open_row(a) for a in board.open_alerts()]   # critical first, then the oldest

An episode only moves forward: `raised` -> (`escalated`) -> `cleared`, all under one
`alert_id` (see services/hot/alerts.py). The hot path is at-least-once, so a record may come
twice; the board keeps the first record per (alert_id, status) and drops anything behind the
episode's furthest status (a replayed `raised` after its `cleared` must not reopen it).
No Kafka here: `fleet alerts` (services/cli/alerts.py) feeds the board.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections import Counter, OrderedDict, deque
from typing import Literal

from services.common.errors import ConfigError
from services.common.settings import Settings, env
from services.hot.alerts import Alert, Severity, Status

Outcome = Literal["shown", "duplicate", "stale", "filtered"]

SEVERITY_RANK: dict[Severity, int] = {"info": 0, "warning": 1, "critical": 2}
_STATUS_RANK: dict[Status, int] = {"raised": 0, "escalated": 1, "cleared": 2}

OPEN_COLUMNS = ("vin", "rule", "signal", "severity", "since (UTC)", "value / threshold", "message")
EVENT_COLUMNS = ("time (UTC)", "status", "vin", "rule", "signal", "severity")


@dataclasses.dataclass(frozen=True)
class AlertsSettings(Settings):
    """What `fleet alerts` watches (the Kafka connection comes from KafkaSettings)."""

    topic: str = env("FLEET_ALERTS_TOPIC", "alerts.health", "the alert topic `fleet alerts` watches")

    def validate(self) -> None:
        """An empty topic name cannot be watched."""
        if not self.topic.strip():
            raise ConfigError("FLEET_ALERTS_TOPIC is empty: expected a topic name")


@dataclasses.dataclass(frozen=True, slots=True)
class AlertFilter:
    """Which episodes a watcher shows; an empty set means any."""

    vins: frozenset[str] = frozenset()
    rules: frozenset[str] = frozenset()
    min_severity: Severity = "info"

    def matches(self, alert: Alert) -> bool:
        """True when the record's car, rule and severity are wanted."""
        return (
            (not self.vins or alert.vin in self.vins)
            and (not self.rules or alert.rule in self.rules)
            and SEVERITY_RANK[alert.severity] >= SEVERITY_RANK[self.min_severity]
        )


def parse_record(value: bytes | None) -> Alert:
    """The Alert in a Kafka record value; ValueError says why it is not one."""
    if value is None:
        raise ValueError("empty record value (tombstone)")
    try:
        return Alert.from_json(value)
    except RecursionError:  # absurdly nested JSON: still just a bad record
        raise ValueError("alert record: JSON nested too deeply") from None


class AlertBoard:
    """The open episodes of the watched topic, the last events, and what was skipped."""

    def __init__(self, filter: AlertFilter | None = None, *, events: int = 20, max_closed: int = 100_000):
        self.filter = filter or AlertFilter()
        self.recent: deque[Alert] = deque(maxlen=events)  # newest last
        self.counts: Counter[str] = Counter()  # by Outcome, plus "malformed"
        self.version = 0  # +1 per shown record: a view redraws only when it moved
        self._open: dict[str, Alert] = {}  # alert_id -> latest record of the episode
        # Ids of cleared episodes, oldest first, bounded: a watch left running for weeks must not
        # grow without end; a replay older than the last `max_closed` episodes is not expected.
        self._closed: OrderedDict[str, None] = collections.OrderedDict()
        self._max_closed = max_closed

    def apply(self, alert: Alert) -> Outcome:
        """Fold one record in; only a "shown" record changes the board or belongs in the stream."""
        current = self._open.get(alert.alert_id)
        if alert.alert_id in self._closed:
            outcome: Outcome = "duplicate" if alert.status == "cleared" else "stale"
        elif current is not None and alert.status == current.status:
            outcome = "duplicate"
        elif current is not None and _STATUS_RANK[alert.status] < _STATUS_RANK[current.status]:
            outcome = "stale"  # e.g. a replayed `raised` after we saw its `escalated`
        elif current is None and not self.filter.matches(alert):
            # The filter picks episodes; once one is on the board all its records are shown,
            # so a clear with a lower severity than the filter still closes it.
            outcome = "filtered"
        else:
            outcome = "shown"
            self._fold(alert)
        self.counts[outcome] += 1
        return outcome

    def note_malformed(self) -> None:
        """Count a record that was not an Alert (the caller warns about it)."""
        self.counts["malformed"] += 1

    def open_alerts(self) -> list[Alert]:
        """Open episodes, critical first, then the oldest first."""
        return sorted(
            self._open.values(),
            key=lambda a: (-SEVERITY_RANK[a.severity], a.started_at, a.vin, a.rule, a.signal),
        )

    def _fold(self, alert: Alert) -> None:
        if alert.status == "cleared":
            self._open.pop(alert.alert_id, None)
            self._closed[alert.alert_id] = None
            while len(self._closed) > self._max_closed:
                self._closed.popitem(last=False)
        else:
            self._open[alert.alert_id] = alert
        self.recent.append(alert)
        self.version += 1


def utc_time(epoch_ms: int) -> str:
    """Epoch milliseconds as `YYYY-MM-DD HH:MM:SS` in UTC (vehicles report UTC epoch time)."""
    try:
        stamp = dt.datetime.fromtimestamp(epoch_ms / 1000, tz=dt.UTC)
    except (OverflowError, OSError, ValueError):  # a vehicle clock far outside datetime's range
        return str(epoch_ms)
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def value_vs_threshold(alert: Alert) -> str:
    """`112.4 / 110`: the deciding reading beside the level it was compared with."""
    value = "-" if alert.value is None else _number(alert.value)
    return value if alert.threshold is None else f"{value} / {_number(alert.threshold)}"


def open_row(alert: Alert) -> tuple[str, ...]:
    """One row of the open-alerts panel, in OPEN_COLUMNS order."""
    return (
        alert.vin,
        alert.rule,
        alert.signal or "-",
        alert.severity,
        utc_time(alert.started_at),
        value_vs_threshold(alert),
        alert.message,
    )


def event_row(alert: Alert) -> tuple[str, ...]:
    """One row of the event stream, in EVENT_COLUMNS order (time = the frame's vehicle time)."""
    return (utc_time(alert.ts), alert.status, alert.vin, alert.rule, alert.signal or "-", alert.severity)


def event_line(alert: Alert) -> str:
    """One plain text line per event, for a pipe or a log file."""
    signal = f" signal={alert.signal}" if alert.signal else ""
    return (
        f"{utc_time(alert.ts)}Z {alert.status:9} {alert.severity:8} {alert.vin} {alert.rule}{signal} "
        f"{value_vs_threshold(alert)} {' '.join(alert.message.splitlines())}"
    )


def _number(x: float | str) -> str:
    return x if isinstance(x, str) else f"{x:g}"
