"""The per-car rule engine: one JSON-able state per VIN in, new state and alerts out. Pure.

    engine = RuleEngine(load_rules())
    state = table.get(vin)                                   # None for a car never seen
    state, alerts = engine.on_frame(vin, "engine", frame, state, now_wall_ms=now_ms())
    for alert in alerts:                                     # send first (acks=all) ...
        await alerts_topic.send(key=vin, value=alert.to_json())
    table[vin] = state                                       # ... then store the state

    # the staleness timer, every second or so, over the cars this worker owns:
    state, alerts = engine.on_timer(vin, table[vin], now_wall_ms=now_ms())

Idempotence. The state records, per subsystem, the `[ts, seq]` of the last frame applied; a
frame at or before it (a redelivery after a restart or rebalance, a duplicate, a frame out of
order) returns the *same state object* and no alerts. `ts` (vehicle time) is the order; `seq`
is kept for diagnosis only, because it restarts when a telematics unit reboots. Every alert
of an episode carries `alert_id(vin, rule, started_at[, signal])`, where `started_at` is a
function of the frames alone, so re-running frames whose state update was lost writes records
with the ids already written: a consumer keeping the first record per (alert_id, status) sees
one `raised` per episode. Both calls return the same state object when nothing changed, so
the caller can skip the Table write (`new is state`): most timer ticks change nothing.

Clocks. Rules decide on vehicle time (the frames' `ts`). `now_wall_ms` is only stamped into
`detected_at`, and, for staleness, taken as the frame's arrival unless `received_ms` (the
bridge's header: when the frame reached the pipeline) is given. Use `received_ms`: a consumer
catching up on a backlog processes old frames "now", which would hide a silence.

State layout (one dict per VIN: ~0.9 kB of compact JSON, 1.2 kB the most seen; the tires'
10 s rate window is half of it):

    {"v": 1,
     "seen": {"engine": [ts, seq], ...},             # last frame applied per subsystem
     "ctx": {"engine_running": true},                # what other subsystems' rules need
     "rules": {"coolant_temp": {...}, "tires": {...}, ...},
     "stale": {"seen_ts", "seen_wall", "ignition", "deltas"[, "episode"]}}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from services.hot.alerts import Alert, alert_id
from services.hot.config import RulesConfig
from services.hot.rules import (
    IGNITION_ON,
    BatteryRule,
    BrakePadRule,
    DtcRule,
    Event,
    FrameView,
    OilPressureRule,
    StaleRule,
    State,
    ThresholdRule,
    TireRules,
    is_active,
)

STATE_VERSION = 1


class Rule(Protocol):
    """What the engine needs of a rule: its subsystem and a pure step."""

    subsystem: str

    def step(self, state: State | None, view: FrameView) -> tuple[State | None, list[Event]]: ...


class RuleEngine:
    """Runs every rule for one car at a time; holds configuration only, never state."""

    def __init__(self, config: RulesConfig | None = None):
        self.config = config = config if config is not None else RulesConfig().check()
        after = config.escalation.after_min
        # State key -> rule. The tire rules share one key: the low-pressure alert of a tire
        # depends on the same tire's puncture episode.
        self.rules: dict[str, Rule] = {
            "coolant_temp": ThresholdRule.coolant(config),
            "oil_pressure": OilPressureRule(config.oil_pressure, after),
            "trans_temp": ThresholdRule.transmission(config),
            "battery_voltage": BatteryRule(config.battery_voltage, after),
            "dtc_new": DtcRule(config.dtc_new, after),
            "tires": TireRules(config.tire_pressure_low, config.tire_puncture, after),
            "brake_pad_wear": BrakePadRule(config.brake_pad_wear, after),
        }
        self.stale = StaleRule(config.stale)
        self._by_subsystem: dict[str, list[tuple[str, Rule]]] = {}
        for key, rule in self.rules.items():
            self._by_subsystem.setdefault(rule.subsystem, []).append((key, rule))
        # Rules whose active episodes quiet others (coolant_temp): only these are looked up per frame.
        self._suppressors = sorted(
            set(config.oil_pressure.suppressed_by)
            | set(config.trans_temp.suppressed_by)
            | set(config.coolant_temp.suppressed_by)
        )
        self._subsystem_of = {
            "stale": StaleRule.subsystem,
            "tire_pressure_low": "chassis",
            "tire_puncture": "chassis",
        }
        for key, rule in self.rules.items():
            self._subsystem_of.setdefault(key, rule.subsystem)

    def on_frame(
        self,
        vin: str,
        subsystem: str,
        frame: Mapping[str, Any],
        state: State | None,
        now_wall_ms: int,
        *,
        received_ms: int | None = None,
    ) -> tuple[State, list[Alert]]:
        """Apply one validated frame of `vin`'s `subsystem`; returns (state, alerts to send).

        A frame without integer `ts` and `seq` (the bridge never forwards one) changes nothing.
        """
        ts, seq = frame.get("ts"), frame.get("seq")
        base: State = state if state is not None else {"v": STATE_VERSION}
        if not isinstance(ts, int) or isinstance(ts, bool) or not isinstance(seq, int):
            return base, []
        seen: dict[str, list[int]] = base.get("seen", {})
        last = seen.get(subsystem)
        if last is not None and ts <= last[0]:
            return base, []  # redelivered, duplicated or out of order: already applied
        new = dict(base)
        new["seen"] = {**seen, subsystem: [ts, seq]}
        rules_state: dict[str, State] = dict(base.get("rules", {}))
        ctx: dict[str, Any] = base.get("ctx", {})
        view = FrameView(
            ts,
            frame,
            engine_running=ctx.get("engine_running"),
            open_rules=frozenset(k for k in self._suppressors if is_active(rules_state.get(k))),
        )
        events: list[Event] = []
        for key, rule in self._by_subsystem.get(subsystem, ()):
            rule_state, rule_events = rule.step(rules_state.get(key), view)
            if rule_state is not None:
                rules_state[key] = rule_state
            events += rule_events
        new["rules"] = rules_state
        running = frame.get("engine_running")
        if subsystem == "engine" and isinstance(running, bool):
            new["ctx"] = {**ctx, "engine_running": running}
        ignition = frame.get("ignition")
        stale, stale_events = self.stale.observe(
            base.get("stale"),
            ts,
            received_ms if received_ms is not None else now_wall_ms,
            (ignition in IGNITION_ON) if subsystem == "electronics" and isinstance(ignition, str) else None,
        )
        if stale is not None:
            new["stale"] = stale
        events += stale_events
        return new, [self._alert(vin, event, now_wall_ms) for event in events]

    def on_timer(self, vin: str, state: State | None, now_wall_ms: int) -> tuple[State | None, list[Alert]]:
        """The staleness check at wall-clock `now_wall_ms`; returns `state` itself if unchanged.

        Call it only for cars whose frames this worker has consumed up to about now: while a
        partition is being caught up (after a restart or rebalance) every car in it looks
        silent on the wall clock.
        """
        if state is None:
            return None, []
        stale, events = self.stale.check(state.get("stale"), now_wall_ms)
        if not events:
            return state, []
        return {**state, "stale": stale}, [self._alert(vin, event, now_wall_ms) for event in events]

    def _alert(self, vin: str, event: Event, now_wall_ms: int) -> Alert:
        return Alert(
            alert_id=alert_id(vin, event.rule, event.started_at, event.signal),
            vin=vin,
            rule=event.rule,
            subsystem=self._subsystem_of.get(event.rule, ""),
            severity=event.severity,
            status=event.status,
            value=event.value,
            threshold=event.threshold,
            started_at=event.started_at,
            ts=event.ts,
            detected_at=now_wall_ms,
            message=event.message,
            signal=event.signal,
        )
