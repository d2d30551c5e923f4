"""The QuixStreams peer of `fleet bench hot`: three of our health rules written the QuixStreams way.

Rules (the same conditions and defaults as services/hot/config.py, ported, not imported):

    coolant_temp       engine frames: coolant_temp_c > 110 °C for 30 s warns, >= 116 °C for 5 s is
                       critical, clears below 105 °C held 60 s (deadband 105..110), a warning still
                       open after 10 min escalates
    tire_pressure_low  chassis frames: a tire <= 75 % of the car's placard (learned: the lowest
                       highest-tire reading seen) in 3 of the last 5 frames; clears > 85 % held 30 s
    tire_puncture      chassis frames: a tire dropping faster than 20 kPa/min over >= 10 s
                       (critical); clears once back >= 85 % of placard and not dropping, held 30 s

Pipeline: one StreamingDataFrame per telemetry topic (all five are consumed and JSON-decoded,
as ours does); engine and chassis carry a stateful `apply` whose state lives in QuixStreams'
RocksDB store keyed by the message key (VIN) and backed by a changelog topic; the other three
have no rule here, so their frames are decoded and dropped. Alerts (the fields of our
`alerts.health` records, same `alert_id` scheme) go to the alerts topic as JSON, key VIN.
With `--merged` the five frames are concatenated into one dataframe with one store per VIN
(the QuixStreams way to share state across topics; it turns on partition time alignment).

Controls (matched with `fleet hot`): at-least-once (QuixStreams' checkpoint: flush changelog and
alerts, wait for the acks, then commit offsets), commit interval 1 s, producer acks=all without
idempotence (Tansu refuses aiokafka's idempotent producer, so ours runs without it; librdkafka's
is accepted, but would not be a match), stdlib `json` for frames and alerts (`--json orjson`:
QuixStreams' default). Vehicle time decides; frames at or before the last one applied per car
and rule are skipped (redeliveries).

On Tansu (v0.6.0), measured with quixstreams 3.28.1 / confluent-kafka 2.12.2 (librdkafka 2.12.1):
- Producer `batch.num.messages=1`. Tansu answers ListOffsets(latest) with the base offset of the
  partition's last batch + 1, so a changelog written in batches looks shorter than the offset
  the local store remembers, and a restart with its state dir fails with
  InvalidStoreChangelogOffset. One record per batch keeps the high watermark true; it costs
  nothing measurable here (a changelog record per changed car per checkpoint, a few alerts).
- Consumer session 6 s: Tansu holds a JoinGroup for about half the session timeout, and
  librdkafka's default 45 s makes every start wait ~22 s.
- The input topics must carry `retention.ms` (bench/hot_peer.py creates them so, as
  infra/topics.yaml does): QuixStreams copies it into its changelog config from DescribeConfigs,
  and Tansu returns only the configs a topic was created with (KeyError 'retention.ms').
The changelog topics (`changelog__<group>--<topic>--default`, compact) need nothing: QuixStreams
creates them with the input's partition count, so Tansu's 4-partition auto-create never applies.

    FLEET_KAFKA_BOOTSTRAP=127.0.0.1:9092 python -m bench.apps.quix_rules <topic_prefix> <alerts_topic> \
        <consumer_group> --count 200000 --idle 10 [--commit-interval 1.0] [--state-dir DIR]

Exits after `--count` consumed messages or `--idle` seconds without one, and prints
{"events", "seconds", "events_per_s", "alerts"} (JSON): events consumed and the time between
the first and the last processed one; the rate is (events - 1) / seconds.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
import uuid
from typing import Any

import orjson
from quixstreams import Application, message_context
from quixstreams.models import JSONDeserializer, JSONSerializer

from services.common.settings import KafkaSettings

SUBSYSTEMS = ("engine", "transmission", "electronics", "chassis", "infotainment")
TIRES = ("tire_fl_kpa", "tire_fr_kpa", "tire_rl_kpa", "tire_rr_kpa")

# Consumer: our group timings (services.common.kafka.FAUST_GROUP_SETTINGS). Tansu holds a
# JoinGroup for about half the session timeout; librdkafka's default 45 s would cost ~22 s.
CONSUMER_CONFIG: dict[str, Any] = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
# Producer (alerts and changelogs share it): acks=all like ours; one record per batch so Tansu
# reports true high watermarks (see the module docstring). librdkafka's defaults otherwise
# (linger.ms 5, no idempotence, murmur2 partitioner set by QuixStreams: the Java client's).
PRODUCER_CONFIG: dict[str, Any] = {"acks": "all", "batch.num.messages": 1}

# uuid5 namespace of fleet-pipeline alert ids (services/hot/alerts.py): same episode, same id.
ALERT_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://fleet-pipeline/alerts.health")

MINUTE_MS = 60_000
ESCALATE_MS = 10 * MINUTE_MS
COOLANT = {
    "rule": "coolant_temp",
    "subsystem": "engine",
    "title": "coolant temperature",
    "unit": " °C",
    "severity": "warning",
    "on_ms": 30_000,
    "crit_on_ms": 5_000,
    "off_ms": 60_000,
}
COOLANT_WARN, COOLANT_CRIT, COOLANT_CLEAR = 110.0, 116.0, 105.0
TIRE_LOW = {
    "rule": "tire_pressure_low",
    "subsystem": "chassis",
    "title": "tire pressure",
    "unit": " kPa",
    "severity": "warning",
    "on_ms": 0,
    "crit_on_ms": 0,
    "off_ms": 30_000,
}
PUNCTURE = {
    "rule": "tire_puncture",
    "subsystem": "chassis",
    "title": "tire pressure drop",
    "unit": " kPa/min",
    "severity": "critical",
    "on_ms": 0,
    "crit_on_ms": 0,
    "off_ms": 30_000,
}
LOW_FRACTION, LOW_CLEAR_FRACTION, LOW_N, LOW_M = 0.75, 0.85, 3, 5
BASELINE_MIN_KPA = 150.0  # a highest-tire reading below this is a dropout: it never lowers the placard
PUNCTURE_KPA_PER_MIN, PUNCTURE_WINDOW_MS, RECOVERED_FRACTION = 20.0, 10_000, 0.85


def now_ms() -> int:
    """Wall clock, epoch ms (`detected_at`)."""
    return int(time.time() * 1000)


def number(value: object) -> float | None:
    """A finite numeric signal as float; None for missing, bool, NaN or anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _fmt(x: Any) -> str:
    if isinstance(x, float | int):
        return f"{round(x, 2):g}"
    return "?" if x is None else str(x)


# A reading: (level 0/1/2, clear, value, threshold, clear_threshold, relation).
Reading = tuple[int, bool, Any, Any, Any, str]
HOLD: Reading = (0, False, None, None, None, "above")  # signal missing: no verdict, pending timers restart


def _message(rule: dict[str, Any], status: str, reading: Reading, by_time: bool = False) -> str:
    _, _, value, threshold, clear_at, relation = reading
    unit = rule["unit"]
    if status == "cleared":
        return f"{rule['title']} back to {_fmt(value)}{unit} (clear level {_fmt(clear_at)}{unit})"
    if threshold is None:
        now = f"{rule['title']} {_fmt(value)} {relation}"
    else:
        now = f"{rule['title']} {_fmt(value)}{unit} {relation} {_fmt(threshold)}{unit}"
    if status == "escalated":
        minutes = ESCALATE_MS / MINUTE_MS
        return f"{now}; not cleared after {minutes:g} min" if by_time else f"{now}; critical level"
    return now


def _alert(
    rule: dict[str, Any],
    vin: str,
    status: str,
    severity: str,
    started: int,
    ts: int,
    r: Reading,
    signal: str,
    by_time: bool = False,
) -> dict[str, Any]:
    """One record in the shape of our `alerts.health` (services/hot/alerts.py)."""
    name = f"{vin}/{rule['rule']}/{signal}/{started}" if signal else f"{vin}/{rule['rule']}/{started}"
    return {
        "alert_id": uuid.uuid5(ALERT_NAMESPACE, name).hex,
        "vin": vin,
        "rule": rule["rule"],
        "subsystem": rule["subsystem"],
        "severity": severity,
        "status": status,
        "value": r[2],
        "threshold": r[4] if status == "cleared" else r[3],
        "started_at": started,
        "ts": ts,
        "detected_at": now_ms(),
        "message": _message(rule, status, r, by_time),
        "signal": signal,
    }


def debounce(
    s: dict[str, Any],
    ts: int,
    r: Reading,
    rule: dict[str, Any],
    vin: str,
    out: list[dict[str, Any]],
    signal: str = "",
    quiet_raise: bool = False,
) -> dict[str, Any]:
    """On-delay, critical on-delay, escalation, off-delay; appends alerts to `out`, returns the new state.

    State keys: on_since / crit_since / off_since (vehicle ms) and episode {started_at, severity[, quiet]}.
    The on-delay survives a dip into the deadband and restarts below the clear level; a clear
    needs the clear condition held continuously for the off-delay.
    """
    level, clear = r[0], r[1]
    # The on-delay restarts below the clear level or without a verdict, not in the deadband.
    on_since = s.get("on_since", ts) if level >= 1 else (None if clear or r is HOLD else s.get("on_since"))
    crit_since = s.get("crit_since", ts) if level >= 2 else None
    crit_due = crit_since is not None and ts - crit_since >= rule["crit_on_ms"]
    episode = s.get("episode")
    off_since = None
    if episode is None:
        if on_since is not None and level >= 1 and (crit_due or ts - on_since >= rule["on_ms"]):
            severity = "critical" if crit_due else rule["severity"]
            episode = {"started_at": on_since, "severity": severity}
            if quiet_raise:
                episode["quiet"] = True
            else:
                out.append(_alert(rule, vin, "raised", severity, on_since, ts, r, signal))
    else:
        quiet, started = episode.get("quiet", False), episode["started_at"]
        if episode["severity"] != "critical" and not clear and (crit_due or ts - started >= ESCALATE_MS):
            episode = {**episode, "severity": "critical"}
            if not quiet:
                out.append(_alert(rule, vin, "escalated", "critical", started, ts, r, signal, not crit_due))
        if clear:
            off_since = s.get("off_since", ts)
            if ts - off_since >= rule["off_ms"]:
                if not quiet:
                    out.append(_alert(rule, vin, "cleared", episode["severity"], started, ts, r, signal))
                episode = off_since = None
    new: dict[str, Any] = {}
    if episode is None:
        if on_since is not None:
            new["on_since"] = on_since
    else:
        new["episode"] = episode
    if crit_since is not None:
        new["crit_since"] = crit_since
    if off_since is not None:
        new["off_since"] = off_since
    return new


def coolant_step(frame: dict[str, Any], vin: str, state: Any) -> list[dict[str, Any]]:
    """coolant_temp on one engine frame; its state is the store's "coolant" key of this VIN."""
    ts = frame.get("ts")
    s = state.get("coolant") or {}
    if not isinstance(ts, int) or ts <= s.get("last_ts", -1):
        return []  # redelivered or out of order: already applied
    value = number(frame.get("coolant_temp_c"))
    r: Reading
    if value is None:
        r = HOLD
    elif value >= COOLANT_CRIT:
        r = (2, False, value, COOLANT_CRIT, COOLANT_CLEAR, "at or above")
    elif value > COOLANT_WARN:
        r = (1, False, value, COOLANT_WARN, COOLANT_CLEAR, "above")
    else:
        r = (0, value < COOLANT_CLEAR, value, COOLANT_WARN, COOLANT_CLEAR, "above")
    out: list[dict[str, Any]] = []
    new = debounce(s, ts, r, COOLANT, vin, out)
    new["last_ts"] = ts
    state.set("coolant", new)
    return out


def tires_step(frame: dict[str, Any], vin: str, state: Any) -> list[dict[str, Any]]:
    """tire_pressure_low (N of M) and tire_puncture (rate over a window) on one chassis frame."""
    ts = frame.get("ts")
    s = state.get("tires") or {}
    if not isinstance(ts, int) or ts <= s.get("last_ts", -1):
        return []
    pressures = [number(frame.get(t)) for t in TIRES]
    baseline = s.get("baseline")
    top = max((p for p in pressures if p is not None), default=None)
    if top is not None and top >= BASELINE_MIN_KPA and (baseline is None or top < baseline):
        baseline = top  # the placard, learned: the lowest highest-tire reading seen
    window: list[list[Any]] = s.get("window", [])
    bits: list[int] = s.get("bits", [0, 0, 0, 0])
    episodes: dict[str, Any] = s.get("episodes", {})
    new_bits = list(bits)
    new_episodes: dict[str, Any] = {}
    out: list[dict[str, Any]] = []
    mask = (1 << LOW_M) - 1
    for i, tire in enumerate(TIRES):
        kpa = pressures[i]
        tire_state = episodes.get(tire, {})
        if kpa is None or baseline is None:
            if tire_state:
                new_episodes[tire] = tire_state
            continue
        rate = None  # kPa/min, positive = falling, over at least a window
        if window and window[0][i + 1] is not None and ts - window[0][0] >= PUNCTURE_WINDOW_MS:
            rate = (window[0][i + 1] - kpa) / (ts - window[0][0]) * MINUTE_MS
        fast = rate is not None and rate > PUNCTURE_KPA_PER_MIN
        recovered = kpa >= RECOVERED_FRACTION * baseline
        limit = PUNCTURE_KPA_PER_MIN
        r: Reading = (1 if fast else 0, recovered and not fast, rate or 0.0, limit, limit, "above")
        puncture = debounce(tire_state.get("puncture", {}), ts, r, PUNCTURE, vin, out, tire)
        low_level, clear_level = LOW_FRACTION * baseline, LOW_CLEAR_FRACTION * baseline
        new_bits[i] = ((bits[i] << 1) | (kpa <= low_level)) & mask
        r = (
            1 if new_bits[i].bit_count() >= LOW_N else 0,
            kpa > clear_level,
            kpa,
            round(low_level, 1),
            round(clear_level, 1),
            "at or below",
        )
        # A low-pressure episode opening under an open puncture is the puncture's: quiet.
        low = debounce(tire_state.get("low", {}), ts, r, TIRE_LOW, vin, out, tire, "episode" in puncture)
        entry = {k: v for k, v in (("low", low), ("puncture", puncture)) if v}
        if entry:
            new_episodes[tire] = entry
    # Rows of the four pressures at least window/5 apart; keep one at least a window old.
    kept = list(window)
    if not kept or ts - kept[-1][0] >= PUNCTURE_WINDOW_MS // 5:
        kept.append([ts, *pressures])
    while len(kept) >= 2 and kept[1][0] <= ts - PUNCTURE_WINDOW_MS:
        kept.pop(0)
    new: dict[str, Any] = {"last_ts": ts, "bits": new_bits, "window": kept}
    if baseline is not None:
        new["baseline"] = baseline
    if new_episodes:
        new["episodes"] = new_episodes
    state.set("tires", new)
    return out


def _engine(value: Any, key: bytes, _ts: int, _headers: Any, state: Any) -> list[dict[str, Any]]:
    return coolant_step(value, key.decode(), state)


def _chassis(value: Any, key: bytes, _ts: int, _headers: Any, state: Any) -> list[dict[str, Any]]:
    return tires_step(value, key.decode(), state)


def stdlib_dumps(value: Any) -> bytes:
    """Compact JSON, as our alerts are written (`Alert.to_json`)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


class Meter:
    """Counts consumed messages (QuixStreams' on_message_processed) and stops the app at `target`."""

    def __init__(self, target: int):
        self.target = target
        self.events = 0
        self.alerts = 0
        self.first = self.last = 0.0
        self.app: Application | None = None

    def processed(self, _topic: str, _partition: int, _offset: int) -> None:
        """After each consumed message."""
        self.last = time.perf_counter()
        if not self.events:
            self.first = self.last
        self.events += 1
        if self.events == self.target and self.app is not None:
            self.app.stop()  # commits the last checkpoint, then run() returns

    def alert(self, value: Any) -> Any:
        """Counts alerts on their way to the topic."""
        self.alerts += 1
        return value

    def report(self) -> dict[str, Any]:
        """The figure: events between the first and the last processed one."""
        seconds = self.last - self.first
        rate = (self.events - 1) / seconds if self.events > 1 and seconds > 0 else 0.0
        return {
            "events": self.events,
            "seconds": round(seconds, 3),
            "events_per_s": round(rate, 1),
            "alerts": self.alerts,
        }


def metered_application(
    bootstrap: str, group: str, meter: Meter, *, commit_interval: float, **extra: Any
) -> Application:
    """An Application with the controls every QuixStreams peer shares (earliest, at-least-once, the
    group timings and acks above), counted by `meter`."""
    app = Application(
        broker_address=bootstrap,
        consumer_group=group,
        auto_offset_reset="earliest",
        commit_interval=commit_interval,
        processing_guarantee="at-least-once",
        consumer_extra_config=CONSUMER_CONFIG,
        producer_extra_config=PRODUCER_CONFIG,
        on_message_processed=meter.processed,
        loglevel="WARNING",
        **extra,
    )
    meter.app = app
    return app


def build_app(
    bootstrap: str,
    prefix: str,
    alerts_topic: str,
    group: str,
    meter: Meter,
    *,
    commit_interval: float = 1.0,
    state_dir: str = "state",
    json_lib: str = "stdlib",
    merged: bool = False,
) -> Application:
    """The Application with its five input dataframes, the rules and the alerts sink (not run)."""
    app = metered_application(
        bootstrap,
        group,
        meter,
        commit_interval=commit_interval,
        state_dir=state_dir,
        use_changelog_topics=True,
    )
    loads, dumps = (orjson.loads, orjson.dumps) if json_lib == "orjson" else (json.loads, stdlib_dumps)
    alerts = app.topic(alerts_topic, key_serializer="bytes", value_serializer=JSONSerializer(dumps=dumps))
    frames = {
        sub: app.dataframe(
            app.topic(
                prefix + sub, key_deserializer="bytes", value_deserializer=JSONDeserializer(loads=loads)
            )
        )
        for sub in SUBSYSTEMS
    }
    if merged:
        engine_topic = prefix + "engine"
        chassis_topic = prefix + "chassis"

        def dispatch(value: Any, key: bytes, _ts: int, _headers: Any, state: Any) -> list[dict[str, Any]]:
            topic = message_context().topic
            if topic == engine_topic:
                return coolant_step(value, key.decode(), state)
            if topic == chassis_topic:
                return tires_step(value, key.decode(), state)
            return []  # no rule here reads this subsystem

        sdf = frames["engine"]
        for sub in SUBSYSTEMS[1:]:
            sdf = sdf.concat(frames[sub])
        sdf.apply(dispatch, stateful=True, metadata=True, expand=True).update(meter.alert).to_topic(alerts)
    else:
        # # {"vin": ..., "ts": ..., "coolant_temp_c": ...} -> [alert, ...] -> one record each
        frames["engine"].apply(_engine, stateful=True, metadata=True, expand=True).update(
            meter.alert
        ).to_topic(alerts)
        frames["chassis"].apply(_chassis, stateful=True, metadata=True, expand=True).update(
            meter.alert
        ).to_topic(alerts)
        # transmission, electronics, infotainment: consumed and decoded, no rule reads them.
    return app


def main(argv: list[str] | None = None) -> None:
    """Run until --count messages or --idle seconds without one; print the figure as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", help="input topics = prefix + subsystem")
    parser.add_argument("alerts_topic")
    parser.add_argument("group", help="consumer group (changelog topics are named after it)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many consumed messages")
    parser.add_argument("--idle", type=float, default=10.0, help="stop after this long without a message (s)")
    parser.add_argument("--commit-interval", type=float, default=1.0, help="checkpoint interval (s)")
    parser.add_argument("--state-dir", default="", help="RocksDB state directory (default: a fresh temp dir)")
    parser.add_argument("--json", choices=("stdlib", "orjson"), default="stdlib", help="JSON library")
    parser.add_argument("--merged", action="store_true", help="one dataframe and one store over the five")
    args = parser.parse_args(argv)
    meter = Meter(args.count)
    with tempfile.TemporaryDirectory(prefix="quix-rules-") as tmp:
        app = build_app(
            KafkaSettings.from_env().bootstrap,
            args.prefix,
            args.alerts_topic,
            args.group,
            meter,
            commit_interval=args.commit_interval,
            state_dir=args.state_dir or tmp,
            json_lib=args.json,
            merged=args.merged,
        )
        app.run(timeout=args.idle, collect=False)
    print(json.dumps(meter.report()), flush=True)


if __name__ == "__main__":
    main()
