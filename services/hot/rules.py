"""Health rules as pure functions: (state, frame) -> (state, events). No I/O, no clocks read.

    rule = ThresholdRule.coolant(RulesConfig())
    state = None
    for frame in engine_frames:                      # one car's telemetry.engine frames, in order
        state, events = rule.step(state, FrameView(frame["ts"], frame))
        for event in events:                         # Event(rule="coolant_temp", status="raised", ...)
            ...

Every rule keeps its state as a small JSON-able dict (plain dicts, lists, numbers, strings),
because it lives in a Faust Table with a JSON changelog; `step` never mutates the state it is
given and returns it unchanged (the same object) for a frame it ignores. `RuleEngine`
(`services.hot.engine`) runs them all for one car and turns events into `Alert` records.

Clocks. Every rule but staleness runs on *vehicle time*: the frame's `ts` (epoch ms). On-delays,
off-delays, rates and escalation are differences of frame timestamps, so a replay or a lagging
consumer decides exactly as a live one. A frame whose `ts` is not after the last one a rule
applied is ignored (no negative rates, no time running backwards). Staleness is the exception:
a silent car sends no timestamps, so `StaleRule.check` compares the *wall clock* of the timer
with the wall-clock arrival of the car's last frame.

Episodes. Each rule's condition is debounced by `debounce()`: it raises after the condition held
for the on-delay, escalates at most once (warning -> critical: by level, or still open after
the escalation time), and clears once the clear condition (past a deadband) held for the
off-delay. The episode starts (`started_at`) at the first frame of the run that raised it, so
re-running the same frames gives the same start, hence the same `alert_id`.

Rules and their conditions (defaults in `services.hot.config`):

    coolant_temp       coolant_temp_c > 110 for 30 s; >= 116 critical; clears < 105 for 60 s
    trans_temp         trans_temp_c > 105 for 30 s; > 120 critical; clears < 100 for 60 s
    oil_pressure       engine running and oil_pressure_kpa < 70 (+45 per 1000 rpm over 1000) for 5 s
    battery_voltage    running (ignition ON and engine running): < 13.0 or > 15.0 V; else < 12.0 V
    tire_pressure_low  tire <= 75 % of placard in 3 of the last 5 frames, per tire
    tire_puncture      tire dropping faster than 20 kPa/min over >= 10 s, per tire
    brake_pad_wear     front or rear pad wear >= 80 % for 10 s
    dtc_new            a code appears in dtc_list (critical if listed); clears when it goes
    stale              no frame for 3x the car's cadence (wall clock) while its ignition was on

Consequential alerts are attributed to their cause: a trans_temp or (shallow) oil_pressure
episode that opens while a coolant_temp episode is active, or a tire_pressure_low episode while
the same tire's puncture is open, is tracked but announced by no event ("quiet").
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from services.hot.alerts import Severity, Status
from services.hot.config import (
    BatteryConfig,
    BrakePadConfig,
    DtcConfig,
    OilPressureConfig,
    PunctureConfig,
    RulesConfig,
    StaleConfig,
    ThresholdConfig,
    TirePressureConfig,
)

State = dict[str, Any]  # JSON-able: dict / list / str / int / float / bool / None only

TIRES = ("tire_fl_kpa", "tire_fr_kpa", "tire_rl_kpa", "tire_rr_kpa")
IGNITION_ON = frozenset({"ON", "START"})  # catalog `ignition` values with the engine able to run
# How many recent frame intervals the staleness rule keeps; their median is the car's cadence
# (a median: one long gap, such as the silence itself, does not move it).
CADENCE_SAMPLES = 5


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """What a rule decided: the vehicle-time part of an `Alert` (the engine adds vin and clocks)."""

    rule: str
    status: Status
    severity: Severity
    started_at: int  # vehicle time, epoch ms
    ts: int  # vehicle time of the deciding frame (staleness: the first missed frame's)
    value: float | str | None
    threshold: float | None
    message: str
    signal: str = ""  # the tire / trouble code of a multi-signal rule


@dataclasses.dataclass(frozen=True, slots=True)
class FrameView:
    """One frame as a rule sees it: its vehicle time, its signals and what the car told before."""

    ts: int  # vehicle time, epoch ms
    signals: Mapping[str, Any]  # the frame itself: {"coolant_temp_c": 91.2, ...}
    engine_running: bool | None = None  # from the car's latest engine frame (battery rule)
    open_rules: frozenset[str] = frozenset()  # rules with an active episode on this car (is_active)


@dataclasses.dataclass(frozen=True, slots=True)
class Timing:
    """A rule's delays, in ms of vehicle time."""

    on_delay_ms: int
    off_delay_ms: int
    critical_on_delay_ms: int = 0
    escalate_after_ms: int | None = None  # a warning open this long becomes critical

    @classmethod
    def of(
        cls,
        on_delay_s: float,
        off_delay_s: float,
        critical_on_delay_s: float = 0.0,
        escalate_after_min: float | None = None,
    ) -> Timing:
        """From the seconds (and minutes) of the config."""
        escalate = None if escalate_after_min is None else round(escalate_after_min * 60_000)
        return cls(
            round(on_delay_s * 1000), round(off_delay_s * 1000), round(critical_on_delay_s * 1000), escalate
        )


@dataclasses.dataclass(frozen=True, slots=True)
class Subject:
    """What a debounced condition is about: names and words for its events."""

    rule: str
    title: str  # "coolant temperature"
    unit: str  # " °C" (with its leading space), or ""
    severity: Severity  # of a raise below the critical level
    timing: Timing


@dataclasses.dataclass(frozen=True, slots=True)
class Reading:
    """A rule's verdict on one frame, before debouncing."""

    level: int  # 0 condition not met, 1 met, 2 met at the critical level
    clear: bool  # past the deadband: counts towards clearing an open episode
    value: float | str | None = None
    threshold: float | None = None  # the level met (or the one watched)
    clear_threshold: float | None = None
    relation: str = "above"  # "<value> <relation> <threshold>" in messages
    hold: bool = False  # no verdict at all: pending timers restart, an open episode stays


HOLD = Reading(0, False, hold=True)  # signal missing, engine off: nothing to judge


def number(value: object) -> float | None:
    """A finite numeric signal as float; None for missing, bool, NaN or anything else."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    x = float(value)
    return x if math.isfinite(x) else None


def _fmt(x: float | str | None) -> str:
    if isinstance(x, float | int):
        return f"{round(x, 2):g}"
    return "?" if x is None else x


def _message(subject: Subject, status: Status, reading: Reading, *, by_time: bool = False) -> str:
    unit = subject.unit
    if status == "cleared":
        if reading.clear_threshold is None:
            return f"{subject.title} {_fmt(reading.value)} cleared"
        return (
            f"{subject.title} back to {_fmt(reading.value)}{unit} "
            f"(clear level {_fmt(reading.clear_threshold)}{unit})"
        )
    if reading.threshold is None:
        now = f"{subject.title} {_fmt(reading.value)} {reading.relation}"
    else:
        now = (
            f"{subject.title} {_fmt(reading.value)}{unit} {reading.relation} {_fmt(reading.threshold)}{unit}"
        )
    if status == "escalated":
        minutes = (subject.timing.escalate_after_ms or 0) / 60_000
        return f"{now}; not cleared after {minutes:g} min" if by_time else f"{now}; critical level"
    return now


def debounce(
    state: State | None,
    ts: int,
    reading: Reading,
    subject: Subject,
    *,
    signal: str = "",
    severity: Severity | None = None,
    suppressed: bool = False,
) -> tuple[State, list[Event]]:
    """On-delay, off-delay, escalation and clearing of one condition; frames must come in order.

    The deadband shields both edges. Rising: the on-delay runs from the first frame meeting the
    condition and restarts only when a frame is back past the clear level (or gives no verdict);
    a dip into the deadband (110 -> 109.8 -> 112 °C) is not a return to normal, and restarting
    the delay there would keep postponing the alert of a climb that wobbles on its way up. The
    raise itself needs the condition met on the frame that raises. Falling: an open episode clears
    once the clear condition held continuously for the off-delay. So a value wandering inside
    the deadband neither raises nor clears, and one crossing the threshold back and forth
    raises once. The critical level has its own, strict on-delay (reset by any frame below it).

    State keys, each present only when set (an idle condition is `{}`):
    `on_since` / `crit_since` / `off_since` (vehicle ms the condition, its critical level, its
    clear condition began holding) and `episode` ({"started_at", "severity"[, "quiet"]}).
    A `suppressed` condition that raises opens a *quiet* episode: tracked like any other, but
    announced by no event, from raise to clear (its cause's alert speaks for it).
    """
    if not state and reading.level < 1:
        return {}, []  # idle and nothing to start: the common case, and what the rest would return
    s = state or {}
    timing = subject.timing
    level = reading.level
    if level >= 1:
        on_since: int | None = s.get("on_since", ts)
    elif reading.clear or reading.hold:
        on_since = None
    else:
        on_since = s.get("on_since")  # in the deadband: still pending
    crit_since = s.get("crit_since", ts) if level >= 2 else None
    crit_due = crit_since is not None and ts - crit_since >= timing.critical_on_delay_ms
    episode: dict[str, Any] | None = s.get("episode")
    off_since = None
    events: list[Event] = []
    if episode is None:
        if on_since is not None and level >= 1 and (crit_due or ts - on_since >= timing.on_delay_ms):
            sev: Severity = "critical" if crit_due else (severity or subject.severity)
            episode = {"started_at": on_since, "severity": sev}
            if suppressed:
                episode["quiet"] = True
            else:
                events.append(_event(subject, "raised", sev, on_since, ts, reading, signal))
    else:
        quiet = episode.get("quiet", False)
        started_at: int = episode["started_at"]
        if episode["severity"] != "critical" and not reading.clear:  # a clearing episode stays as it is
            escalate = timing.escalate_after_ms
            by_time = escalate is not None and ts - started_at >= escalate
            if crit_due or by_time:
                episode = {**episode, "severity": "critical"}
                if not quiet:
                    message = _message(subject, "escalated", reading, by_time=not crit_due)
                    events.append(
                        Event(
                            subject.rule,
                            "escalated",
                            "critical",
                            started_at,
                            ts,
                            reading.value,
                            reading.threshold,
                            message,
                            signal,
                        )
                    )
        if reading.clear:
            off_since = s.get("off_since", ts)
            if ts - off_since >= timing.off_delay_ms:
                if not quiet:
                    events.append(
                        _event(subject, "cleared", episode["severity"], started_at, ts, reading, signal)
                    )
                episode = None
                off_since = None
    new: State = {}
    if episode is None:
        if on_since is not None:
            new["on_since"] = on_since
    else:
        new["episode"] = episode
    if crit_since is not None:
        new["crit_since"] = crit_since
    if off_since is not None:
        new["off_since"] = off_since
    return new, events


def _event(
    subject: Subject,
    status: Status,
    severity: Severity,
    started_at: int,
    ts: int,
    reading: Reading,
    signal: str,
) -> Event:
    threshold = reading.clear_threshold if status == "cleared" else reading.threshold
    return Event(
        subject.rule,
        status,
        severity,
        started_at,
        ts,
        reading.value,
        threshold,
        _message(subject, status, reading),
        signal,
    )


def is_active(state: State | None) -> bool:
    """Open, clearing or not: what may explain other rules' readings.

    Including the clearing hold matters: after an overheat is repaired the coolant is back under
    its clear level in ~20 s, but the oil stays hot for minutes and sags a few kPa under its
    minimum at idle (seen 18-27 s after repairs in the simulator's thermal model).
    """
    return state is not None and "episode" in state


def _escalation(config: RulesConfig) -> float | None:
    return config.escalation.after_min


def _in_order(state: State | None, ts: int) -> bool:
    """Whether a frame at `ts` comes after the last one this rule applied."""
    return state is None or ts > state.get("last_ts", -1)


# --- coolant and transmission fluid: levels with hysteresis ------------------------------------


class ThresholdRule:
    """A signal above a warning level (critical above another), with on/off delays and deadband."""

    def __init__(
        self,
        name: str,
        subsystem: str,
        signal: str,
        title: str,
        config: ThresholdConfig,
        escalate_after_min: float | None,
    ):
        self.name = name
        self.subsystem = subsystem
        self.signal = signal
        self.config = config
        timing = Timing.of(
            config.on_delay_s, config.off_delay_s, config.critical_on_delay_s, escalate_after_min
        )
        self.subject = Subject(name, title, " °C", "warning", timing)
        self.suppressed_by = frozenset(config.suppressed_by)

    @classmethod
    def coolant(cls, config: RulesConfig) -> ThresholdRule:
        """coolant_temp on the engine frames' coolant_temp_c."""
        return cls(
            "coolant_temp",
            "engine",
            "coolant_temp_c",
            "coolant temperature",
            config.coolant_temp,
            _escalation(config),
        )

    @classmethod
    def transmission(cls, config: RulesConfig) -> ThresholdRule:
        """trans_temp on the transmission frames' trans_temp_c."""
        return cls(
            "trans_temp",
            "transmission",
            "trans_temp_c",
            "transmission fluid temperature",
            config.trans_temp,
            _escalation(config),
        )

    def read(self, value: float) -> Reading:
        """The verdict on one value."""
        c = self.config
        critical = c.critical is not None and (
            value >= c.critical if c.critical_inclusive else value > c.critical
        )
        if critical:
            return Reading(
                2, False, value, c.critical, c.clear_below, "at or above" if c.critical_inclusive else "above"
            )
        if value > c.warning:
            return Reading(1, False, value, c.warning, c.clear_below, "above")
        return Reading(0, value < c.clear_below, value, c.warning, c.clear_below, "above")

    def step(self, state: State | None, view: FrameView) -> tuple[State | None, list[Event]]:
        """Apply one frame (vehicle time)."""
        if not _in_order(state, view.ts):
            return state, []
        value = number(view.signals.get(self.signal))
        reading = HOLD if value is None else self.read(value)
        suppressed = not self.suppressed_by.isdisjoint(view.open_rules)
        new, events = debounce(state, view.ts, reading, self.subject, suppressed=suppressed)
        new["last_ts"] = view.ts
        return new, events


# --- oil pressure ----------------------------------------------------------------------------


class OilPressureRule:
    """Oil pressure below the rpm-dependent minimum while the engine runs (engine frames)."""

    name = "oil_pressure"
    subsystem = "engine"

    def __init__(self, config: OilPressureConfig, escalate_after_min: float | None = None):
        self.config = config
        timing = Timing.of(config.on_delay_s, config.off_delay_s, 0.0, escalate_after_min)
        self.subject = Subject(self.name, "oil pressure", " kPa", config.severity, timing)
        self.suppressed_by = frozenset(config.suppressed_by)

    def read(self, signals: Mapping[str, Any]) -> Reading:
        """The verdict on one engine frame; HOLD while the engine is off (no pressure expected)."""
        rpm = number(signals.get("engine_rpm"))
        kpa = number(signals.get("oil_pressure_kpa"))
        if signals.get("engine_running") is not True or rpm is None or kpa is None or rpm <= 0:
            return HOLD
        minimum = self.config.minimum_kpa(rpm)
        clear_at = minimum + self.config.clear_margin_kpa
        return Reading(1 if kpa < minimum else 0, kpa >= clear_at, kpa, minimum, clear_at, "below")

    def step(self, state: State | None, view: FrameView) -> tuple[State | None, list[Event]]:
        """Apply one engine frame (vehicle time)."""
        if not _in_order(state, view.ts):
            return state, []
        reading = self.read(view.signals)
        # Only a shallow sag is thin hot oil; a deep drop is a pump failing, whatever else is on.
        shallow = (
            reading.threshold is not None
            and isinstance(reading.value, float)
            and (reading.value >= reading.threshold - self.config.suppress_within_kpa)
        )
        suppressed = shallow and not self.suppressed_by.isdisjoint(view.open_rules)
        new, events = debounce(state, view.ts, reading, self.subject, suppressed=suppressed)
        new["last_ts"] = view.ts
        return new, events


# --- 12 V battery ----------------------------------------------------------------------------


class BatteryRule:
    """Battery voltage out of the charging band while running, or too low at rest (electronics).

    "Running" is the frame's ignition ON/START *and* the latest engine frame not saying the
    engine is stopped (ignition ON with the engine off reads resting voltages). An episode
    opened in one mode is cleared only by frames of that mode: a car that stops with a dead
    alternator keeps its alert until a run shows the charging voltage back.
    """

    name = "battery_voltage"
    subsystem = "electronics"

    def __init__(self, config: BatteryConfig, escalate_after_min: float | None = None):
        self.config = config
        timing = Timing.of(config.on_delay_s, config.off_delay_s, 0.0, escalate_after_min)
        self.subject = Subject(self.name, "battery voltage", " V", config.severity, timing)

    @staticmethod
    def mode(signals: Mapping[str, Any], engine_running: bool | None) -> str:
        """ "running" or "resting"."""
        on = signals.get("ignition") in IGNITION_ON
        return "running" if on and engine_running is not False else "resting"

    def read(self, volts: float, mode: str) -> Reading:
        """The verdict on one voltage in one mode."""
        c = self.config
        if mode == "running":
            if volts < c.running_min_v:
                return Reading(1, False, volts, c.running_min_v, c.running_min_v + c.deadband_v, "below")
            if volts > c.running_max_v:
                return Reading(1, False, volts, c.running_max_v, c.running_max_v - c.deadband_v, "above")
            ok = c.running_min_v + c.deadband_v <= volts <= c.running_max_v - c.deadband_v
            return Reading(0, ok, volts, c.running_min_v, c.running_min_v + c.deadband_v, "below")
        clear_at = c.resting_min_v + c.deadband_v
        return Reading(
            1 if volts < c.resting_min_v else 0, volts >= clear_at, volts, c.resting_min_v, clear_at, "below"
        )

    def step(self, state: State | None, view: FrameView) -> tuple[State | None, list[Event]]:
        """Apply one electronics frame (vehicle time)."""
        if not _in_order(state, view.ts):
            return state, []
        volts = number(view.signals.get("battery_voltage_v"))
        mode = self.mode(view.signals, view.engine_running)
        opened_in = (state or {}).get("mode")
        if volts is None or (opened_in is not None and opened_in != mode):
            reading = HOLD  # the other mode says nothing about this episode
        else:
            reading = self.read(volts, mode)
        new, events = debounce(state, view.ts, reading, self.subject)
        if "episode" in new:
            new["mode"] = opened_in or mode
        new["last_ts"] = view.ts
        return new, events


# --- tires: low pressure (N of M) and puncture (rate of change) ---------------------------------


class TireRules:
    """tire_pressure_low and tire_puncture, per tire, on the chassis frames.

    State: {"last_ts", "baseline" (learned placard, kPa), "bits": [one int per tire],
    "window": [[ts, fl, fr, rl, rr], ...], "episodes": {tire: {"low": ..., "puncture": ...}}}.
    `bits` holds each tire's last M low/not-low verdicts (newest in bit 0). `window` keeps rows
    of the four pressures at least window/5 apart, the oldest the newest one at least a window
    old (one shared row per frame: the four tires arrive together). A low-pressure episode that
    opens while the same tire's puncture episode is open is quiet: the puncture is its cause,
    one alert per flat tire.
    """

    names = ("tire_pressure_low", "tire_puncture")
    subsystem = "chassis"

    def __init__(
        self, low: TirePressureConfig, puncture: PunctureConfig, escalate_after_min: float | None = None
    ):
        self.low = low
        self.puncture = puncture
        low_timing = Timing.of(0.0, low.off_delay_s, 0.0, escalate_after_min)
        puncture_timing = Timing.of(0.0, puncture.off_delay_s, 0.0, escalate_after_min)
        self.low_subject = Subject("tire_pressure_low", "tire pressure", " kPa", low.severity, low_timing)
        self.puncture_subject = Subject(
            "tire_puncture", "tire pressure drop", " kPa/min", puncture.severity, puncture_timing
        )
        self._mask = (1 << low.m) - 1
        self._window_ms = round(puncture.window_s * 1000)
        self._spacing_ms = self._window_ms // 5

    def baseline(self, old: float | None, pressures: list[float | None]) -> float | None:
        """The placard: configured, or the lowest highest-tire reading seen (see TirePressureConfig)."""
        if self.low.placard_kpa is not None:
            return self.low.placard_kpa
        top = max((p for p in pressures if p is not None), default=None)
        if top is None or top < self.low.baseline_min_kpa:
            return old
        return top if old is None or top < old else old

    def rate(self, window: list[list[Any]], i: int, ts: int, kpa: float) -> float | None:
        """Tire `i`'s pressure drop (kPa/min, positive = falling) since the oldest row, once a window old."""
        if not window:
            return None
        then, was = window[0][0], window[0][i + 1]
        span = ts - then
        if was is None or span < self._window_ms:
            return None
        return float((was - kpa) / span * 60_000)

    def _window(self, window: list[list[Any]], ts: int, pressures: list[float | None]) -> list[list[Any]]:
        """Append this frame's row (if window/5 after the last), keep one row at least a window old."""
        kept = list(window)
        if not kept or ts - kept[-1][0] >= self._spacing_ms:
            kept.append([ts, *pressures])
        while len(kept) >= 2 and kept[1][0] <= ts - self._window_ms:
            kept.pop(0)
        return kept

    def step(self, state: State | None, view: FrameView) -> tuple[State | None, list[Event]]:
        """Apply one chassis frame (vehicle time)."""
        if not _in_order(state, view.ts):
            return state, []
        ts = view.ts
        old = state or {}
        pressures = [number(view.signals.get(t)) for t in TIRES]
        baseline = self.baseline(old.get("baseline"), pressures)
        window: list[list[Any]] = old.get("window", [])
        bits: list[int] = old.get("bits", [0] * len(TIRES))
        episodes: dict[str, State] = old.get("episodes", {})
        new_bits = list(bits)
        new_episodes: dict[str, State] = {}
        events: list[Event] = []
        for i, tire in enumerate(TIRES):
            kpa = pressures[i]
            tire_state: State = episodes.get(tire, {})
            if kpa is None or baseline is None:
                if tire_state:
                    new_episodes[tire] = tire_state  # no reading: nothing changes for this tire
                continue
            # Puncture first: an open puncture quiets the low-pressure alert of the same tire.
            # (An idle condition meeting nothing stays idle: no Reading to build, see `debounce`.)
            rate = self.rate(window, i, ts, kpa)
            limit = self.puncture.kpa_per_min
            fast = rate is not None and rate > limit
            puncture: State = {}
            if fast or tire_state.get("puncture"):
                recovered = kpa >= self.puncture.recovered_fraction * baseline
                reading = Reading(
                    1 if fast else 0, recovered and not fast, rate or 0.0, limit, limit, "above"
                )
                puncture, ev = debounce(
                    tire_state.get("puncture"), ts, reading, self.puncture_subject, signal=tire
                )
                events += ev
            low_level = self.low.low_fraction * baseline
            new_bits[i] = ((bits[i] << 1) | (kpa <= low_level)) & self._mask
            met = new_bits[i].bit_count() >= self.low.n
            low: State = {}
            if met or tire_state.get("low"):
                clear_level = self.low.clear_fraction * baseline
                reading = Reading(
                    1 if met else 0,
                    kpa > clear_level,
                    kpa,
                    round(low_level, 1),
                    round(clear_level, 1),
                    "at or below",
                )
                quiet = "episode" in puncture
                low, ev = debounce(
                    tire_state.get("low"), ts, reading, self.low_subject, signal=tire, suppressed=quiet
                )
                events += ev
            entry = {k: v for k, v in (("low", low), ("puncture", puncture)) if v}
            if entry:
                new_episodes[tire] = entry
        new: State = {"last_ts": ts, "bits": new_bits, "window": self._window(window, ts, pressures)}
        if baseline is not None:
            new["baseline"] = baseline
        if new_episodes:
            new["episodes"] = new_episodes
        return new, events

    def open_signals(self, state: State | None, rule: str) -> list[str]:
        """The tires with an episode of `rule` ("tire_pressure_low" / "tire_puncture") open."""
        key = "low" if rule == "tire_pressure_low" else "puncture"
        episodes: dict[str, State] = (state or {}).get("episodes", {})
        return [tire for tire, entry in episodes.items() if "episode" in entry.get(key, {})]


# --- brake pads ------------------------------------------------------------------------------


class BrakePadRule:
    """The worse of front and rear pad wear at or above `worn_pct` (chassis frames)."""

    name = "brake_pad_wear"
    subsystem = "chassis"
    SIGNALS = ("brake_pad_wear_front_pct", "brake_pad_wear_rear_pct")

    def __init__(self, config: BrakePadConfig, escalate_after_min: float | None = None):
        self.config = config
        timing = Timing.of(config.on_delay_s, config.off_delay_s, 0.0, escalate_after_min)
        self.subject = Subject(self.name, "brake pad wear", " %", config.severity, timing)

    def step(self, state: State | None, view: FrameView) -> tuple[State | None, list[Event]]:
        """Apply one chassis frame (vehicle time)."""
        if not _in_order(state, view.ts):
            return state, []
        wear = [w for w in (number(view.signals.get(s)) for s in self.SIGNALS) if w is not None]
        c = self.config
        if wear:
            worst = max(wear)
            reading = Reading(
                1 if worst >= c.worn_pct else 0,
                worst < c.clear_below_pct,
                worst,
                c.worn_pct,
                c.clear_below_pct,
                "at or above",
            )
        else:
            reading = HOLD
        new, events = debounce(state, view.ts, reading, self.subject)
        new["last_ts"] = view.ts
        return new, events


# --- diagnostic trouble codes ----------------------------------------------------------------


class DtcRule:
    """A code appearing in `dtc_list` raises at once; its disappearing clears (electronics frames).

    Per code, the same debouncer with no delays: that is the set difference against the previous
    frame's list. State: {"last_ts", "codes": {code: debouncer state}} for open codes only.
    A car's first frame has no previous list: the codes it carries are new to us, so they raise.
    """

    name = "dtc_new"
    subsystem = "electronics"

    def __init__(self, config: DtcConfig, escalate_after_min: float | None = None):
        self.config = config
        self.critical = frozenset(config.critical_codes)
        self.subject = Subject(
            self.name, "trouble code", "", config.severity, Timing.of(0.0, 0.0, 0.0, escalate_after_min)
        )

    def step(self, state: State | None, view: FrameView) -> tuple[State | None, list[Event]]:
        """Apply one electronics frame (vehicle time)."""
        if not _in_order(state, view.ts):
            return state, []
        raw = view.signals.get("dtc_list")
        old: dict[str, State] = (state or {}).get("codes", {})
        if not isinstance(raw, list):
            return {**(state or {}), "last_ts": view.ts}, []  # no list this frame: no verdict
        present = {c for c in raw if isinstance(c, str) and c}
        codes: dict[str, State] = {}
        events: list[Event] = []
        for code in sorted(present | set(old)):
            there = code in present
            reading = Reading(1 if there else 0, not there, code, None, None, "set")
            severity: Severity = "critical" if code in self.critical else self.config.severity
            new, ev = debounce(old.get(code), view.ts, reading, self.subject, signal=code, severity=severity)
            events += ev
            if new:
                codes[code] = new
        out: State = {"last_ts": view.ts}
        if codes:
            out["codes"] = codes
        return out, events


# --- staleness -------------------------------------------------------------------------------


class StaleRule:
    """No frames from a car for `factor` x its cadence while its ignition was on.

    Two entry points, two clocks:
    - `observe(state, ts, arrival_ms, ignition)` on every frame: records the newest vehicle `ts`,
      the *wall-clock* arrival of the newest frame, the ignition, the interval between frames
      (vehicle time: its median is the cadence); a newer frame clears an open episode.
    - `check(state, now_wall_ms)` on the timer: raises when the wall clock has moved more than
      factor x cadence past that arrival. The episode starts (`started_at`, vehicle time) at
      the first missed frame, `seen_ts + cadence`, a function of the state alone: a timer firing
      twice, or again after a restart, computes the same episode.

    The silence is wall time and the cadence vehicle time: this assumes the car's clock runs at
    wall speed (a simulator at --speedup N sends N x faster than its cadence says).
    """

    name = "stale"
    subsystem = "electronics"  # the telematics unit

    def __init__(self, config: StaleConfig):
        self.config = config

    def cadence_ms(self, state: State) -> float:
        """The car's frame interval: median of its recent ones, or the configured default."""
        deltas = sorted(state.get("deltas", ()))
        return float(deltas[(len(deltas) - 1) // 2]) if deltas else float(self.config.cadence_ms)

    def observe(
        self, state: State | None, ts: int, arrival_ms: int, ignition: bool | None
    ) -> tuple[State | None, list[Event]]:
        """A frame arrived (any subsystem): vehicle `ts`, wall-clock `arrival_ms`."""
        s = state or {}
        seen_ts: int | None = s.get("seen_ts")
        newer = seen_ts is None or ts > seen_ts
        if not newer and (ignition is None or s.get("ignition") == ignition):
            return state, []  # the same tick from another subsystem, or a late frame
        new = dict(s)
        if ignition is not None:
            new["ignition"] = ignition
        if not newer:
            return new, []
        if seen_ts is not None:
            new["deltas"] = [*s.get("deltas", ()), ts - seen_ts][-CADENCE_SAMPLES:]
        new["seen_ts"] = ts
        new["seen_wall"] = max(arrival_ms, s.get("seen_wall", arrival_ms))
        events: list[Event] = []
        episode = new.pop("episode", None)
        if episode is not None:
            gap_s = (ts - (seen_ts or ts)) / 1000
            events.append(
                Event(
                    self.name,
                    "cleared",
                    episode["severity"],
                    episode["started_at"],
                    ts,
                    gap_s,
                    None,
                    f"frames again after {_fmt(gap_s)} s of vehicle time",
                )
            )
        return new, events

    def check(self, state: State | None, now_wall_ms: int) -> tuple[State | None, list[Event]]:
        """The timer: raise if the car has been silent too long (wall clock); `state` if unchanged."""
        if not state or "episode" in state or not state.get("ignition") or "seen_wall" not in state:
            return state, []
        cadence = self.cadence_ms(state)
        limit = self.config.factor * cadence
        silence = now_wall_ms - state["seen_wall"]
        if silence <= limit:
            return state, []
        started_at = state["seen_ts"] + round(cadence)
        severity = self.config.severity
        new = {**state, "episode": {"started_at": started_at, "severity": severity}}
        message = (
            f"no frames for {_fmt(silence / 1000)} s with the ignition on (limit {_fmt(limit / 1000)} s)"
        )
        return new, [
            Event(
                self.name, "raised", severity, started_at, started_at, silence / 1000, limit / 1000, message
            )
        ]
