"""The hot path's rule settings: defaults in code, `infra/rules.yaml` as optional overrides.

    config = load_rules()                            # the defaults below
    config = load_rules(Path("infra/rules.yaml"))    # the file's values over the defaults
    config.coolant_temp.on_delay_s                   # 30.0

The YAML has one mapping per rule, keyed by the rule's name; every key is optional:

    coolant_temp: {warning: 110, critical: 116, clear_below: 105, on_delay_s: 30, off_delay_s: 60}
    escalation: {after_min: 10}

An unknown section or key, a value of the wrong type or an inconsistent set of levels is a
`ConfigError` whose one line names the file and the key (`infra/rules.yaml: coolant_temp.warnig:
unknown key ...`). Nothing here reads the environment: the service's Settings name the file.

Where a default is one of the simulator's fault signatures (`simulators/faults.py`), it is the
same number, and `tests/unit/services/hot/test_config.py` asserts it: the services do not
import the simulator, but they must agree with the labels it writes.

Clocks: every `*_s` / `*_min` / `cadence_ms` below is vehicle time (the frames' `ts`), except the
staleness rule's silence, which is measured on the wall clock (a silent car's clock says nothing).
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, Self, get_args, get_origin, get_type_hints

import yaml

from services.common.errors import ConfigError
from services.common.settings import INFRA_DIR
from services.hot.alerts import Severity

DEFAULT_RULES_PATH = INFRA_DIR / "rules.yaml"

# The rule names alerts carry (`Alert.rule`); the simulator's labels use the same names.
RuleName = Literal[
    "coolant_temp",
    "trans_temp",
    "oil_pressure",
    "battery_voltage",
    "tire_pressure_low",
    "tire_puncture",
    "brake_pad_wear",
    "dtc_new",
    "stale",
]
RULE_NAMES: tuple[RuleName, ...] = get_args(RuleName)


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _non_negative(where: str, **values: float) -> None:
    for key, value in values.items():
        if value < 0:
            raise _fail(f"{where}.{key}", f"must be >= 0, got {value}")


def _check_suppressors(where: str, own: str, names: tuple[str, ...]) -> None:
    for name in names:
        if name not in RULE_NAMES or name == own:
            raise _fail(f"{where}.suppressed_by", f"{name!r} is not another rule ({', '.join(RULE_NAMES)})")


@dataclasses.dataclass(frozen=True)
class ThresholdConfig:
    """A level with hysteresis: raise above `warning` held `on_delay_s`, clear below `clear_below`.

    `clear_below` < `warning` is the deadband: a value wandering between them neither raises nor
    clears. At `critical` (inclusive or not) held `critical_on_delay_s` the episode is (or
    becomes) critical without waiting for the warning's on-delay.
    """

    warning: float
    critical: float | None
    clear_below: float
    critical_inclusive: bool = True  # ">= critical" (else "> critical")
    on_delay_s: float = 30.0
    critical_on_delay_s: float = 5.0  # a few frames: one glitched reading is not an emergency
    off_delay_s: float = 60.0
    # Rules whose active episode (open, not clearing) explains this one: an episode opening
    # then is tracked but not announced, raise to clear (see OilPressureConfig.suppressed_by).
    suppressed_by: tuple[str, ...] = ()

    def check(self, where: str, own: str) -> None:
        """Raise ConfigError unless clear_below < warning < critical and delays are >= 0."""
        if not self.clear_below < self.warning:
            raise _fail(f"{where}.clear_below", f"{self.clear_below} must be below warning ({self.warning})")
        if self.critical is not None and not self.critical > self.warning:
            raise _fail(f"{where}.critical", f"{self.critical} must be above warning ({self.warning})")
        _non_negative(
            where,
            on_delay_s=self.on_delay_s,
            critical_on_delay_s=self.critical_on_delay_s,
            off_delay_s=self.off_delay_s,
        )
        _check_suppressors(where, own, self.suppressed_by)


@dataclasses.dataclass(frozen=True)
class OilPressureConfig:
    """Low oil pressure while the engine runs, against an rpm-dependent minimum.

    minimum(rpm) = idle_min_kpa + per_1000_rpm_kpa * max(0, rpm - knee_rpm) / 1000: 70 kPa up to
    1000 rpm, 115 kPa at 2000 rpm (the simulator's `faults.oil_pressure_minimum`).
    """

    idle_min_kpa: float = 70.0
    knee_rpm: float = 1000.0
    per_1000_rpm_kpa: float = 45.0
    clear_margin_kpa: float = 10.0  # deadband: clear only at minimum + margin
    on_delay_s: float = 5.0  # a pump needs ~1-2 s to build pressure after a start
    off_delay_s: float = 10.0
    severity: Severity = "critical"  # the red oil lamp: stop the engine
    # Rules whose active episode explains this one: an engine overheating thins its oil, and the
    # pressure sags a few kPa below the minimum at hot idle, also for minutes after the coolant is
    # back under its clear level (the oil cools slower). An oil episode that *opens* while a
    # coolant_temp episode is open (clearing or not), no
    # deeper than `suppress_within_kpa` under the minimum, is attributed to it and not announced
    # (alarm-flood practice: suppress consequential alarms). A failing pump reads 40 kPa or more
    # under the minimum and is always announced. Empty to announce everything.
    suppressed_by: tuple[str, ...] = ("coolant_temp",)
    suppress_within_kpa: float = 20.0

    def minimum_kpa(self, rpm: float) -> float:
        """The oil pressure floor at `rpm`."""
        above = rpm - self.knee_rpm
        return self.idle_min_kpa + (above if above > 0.0 else 0.0) / 1000.0 * self.per_1000_rpm_kpa

    def check(self, where: str, own: str) -> None:
        """Raise ConfigError on negative values."""
        _non_negative(
            where,
            idle_min_kpa=self.idle_min_kpa,
            knee_rpm=self.knee_rpm,
            per_1000_rpm_kpa=self.per_1000_rpm_kpa,
            clear_margin_kpa=self.clear_margin_kpa,
            suppress_within_kpa=self.suppress_within_kpa,
            on_delay_s=self.on_delay_s,
            off_delay_s=self.off_delay_s,
        )
        _check_suppressors(where, own, self.suppressed_by)


@dataclasses.dataclass(frozen=True)
class BatteryConfig:
    """12 V battery: charging system out of band while running, a flat battery at rest."""

    running_min_v: float = 13.0  # below: the alternator is not charging
    running_max_v: float = 15.0  # above: the regulator has failed (boils the battery)
    resting_min_v: float = 12.0  # below: about 25 % charge, a start may fail
    deadband_v: float = 0.2  # clear only this far back inside the band
    on_delay_s: float = 10.0  # cranking dips and load steps last a second or two
    off_delay_s: float = 30.0
    severity: Severity = "warning"

    def check(self, where: str, own: str) -> None:
        """Raise ConfigError unless resting_min < running_min < running_max and values >= 0."""
        if not self.running_min_v < self.running_max_v:
            raise _fail(f"{where}.running_min_v", "must be below running_max_v")
        if not self.resting_min_v <= self.running_min_v:
            raise _fail(f"{where}.resting_min_v", "must not be above running_min_v")
        _non_negative(
            where, deadband_v=self.deadband_v, on_delay_s=self.on_delay_s, off_delay_s=self.off_delay_s
        )


@dataclasses.dataclass(frozen=True)
class TirePressureConfig:
    """Low tire pressure: at or below `low_fraction` of placard in `n` of the last `m` frames.

    Frames carry no placard. With `placard_kpa` null (the default) each car's reference is learned:
    the lowest value seen of the highest of its four tires. A healthy tire only reads above its
    cold placard pressure (warming raises it), a leak takes one tire at a time, and a car is seen
    cold at least once (overnight; a simulated car starts soaked), so this converges on the
    placard from above: before it does, the rule can only fire early, never miss. Readings whose
    highest tire is below `baseline_min_kpa` (a sensor dropout) never lower it.
    """

    low_fraction: float = 0.75  # FMVSS 138 TPMS: 25 % under placard
    clear_fraction: float = 0.85  # deadband: a warm tire gains ~8 %, so clear only well above
    n: int = 3
    m: int = 5
    off_delay_s: float = 30.0
    placard_kpa: float | None = None  # one placard for the whole fleet, else learned per car
    baseline_min_kpa: float = 150.0
    severity: Severity = "warning"

    def check(self, where: str, own: str) -> None:
        """Raise ConfigError unless 0 < low < clear <= 1, 1 <= n <= m <= 64, values >= 0."""
        if not 0.0 < self.low_fraction < self.clear_fraction <= 1.0:
            raise _fail(f"{where}.clear_fraction", "expected 0 < low_fraction < clear_fraction <= 1")
        if not 1 <= self.n <= self.m <= 64:
            raise _fail(f"{where}.n", f"expected 1 <= n <= m <= 64, got n={self.n} m={self.m}")
        if self.placard_kpa is not None and self.placard_kpa <= 0:
            raise _fail(f"{where}.placard_kpa", "must be > 0 (or null to learn it)")
        _non_negative(where, off_delay_s=self.off_delay_s, baseline_min_kpa=self.baseline_min_kpa)


@dataclasses.dataclass(frozen=True)
class PunctureConfig:
    """A tire losing pressure faster than `kpa_per_min`, measured over at least `window_s`.

    The rate spans at least a window (vehicle time) so that sensor noise and rounding (0.1 kPa
    in 1 s reads as 6 kPa/min) cannot trip it; a slow leak (a few kPa/min) never does. The
    episode clears once the tire is back above `recovered_fraction` of placard and no longer
    dropping, held `off_delay_s`: a flat tire stays an open episode until it is pumped up.
    """

    kpa_per_min: float = 20.0
    window_s: float = 10.0
    recovered_fraction: float = 0.85
    off_delay_s: float = 30.0
    severity: Severity = "critical"

    def check(self, where: str, own: str) -> None:
        """Raise ConfigError on a non-positive rate or window."""
        if self.kpa_per_min <= 0:
            raise _fail(f"{where}.kpa_per_min", "must be > 0")
        if self.window_s <= 0:
            raise _fail(f"{where}.window_s", "must be > 0")
        if not 0.0 < self.recovered_fraction <= 1.0:
            raise _fail(f"{where}.recovered_fraction", "expected 0 < recovered_fraction <= 1")
        _non_negative(where, off_delay_s=self.off_delay_s)


@dataclasses.dataclass(frozen=True)
class BrakePadConfig:
    """Brake pad wear (front or rear, whichever is worse) at or above `worn_pct`."""

    worn_pct: float = 80.0
    clear_below_pct: float = 75.0  # pads never un-wear: only new pads clear it
    on_delay_s: float = 10.0
    off_delay_s: float = 10.0
    severity: Severity = "warning"

    def check(self, where: str, own: str) -> None:
        """Raise ConfigError unless clear_below_pct < worn_pct and delays are >= 0."""
        if not self.clear_below_pct < self.worn_pct:
            raise _fail(f"{where}.clear_below_pct", f"must be below worn_pct ({self.worn_pct})")
        _non_negative(where, on_delay_s=self.on_delay_s, off_delay_s=self.off_delay_s)


@dataclasses.dataclass(frozen=True)
class DtcConfig:
    """A diagnostic trouble code appearing in `dtc_list`; critical if listed here."""

    # P0217 engine over-temperature, P0524 oil pressure too low, P0300 random misfire.
    critical_codes: tuple[str, ...] = ("P0217", "P0524", "P0300")
    severity: Severity = "warning"  # of any other code

    def check(self, where: str, own: str) -> None:
        """Raise ConfigError on an empty code."""
        if any(not code for code in self.critical_codes):
            raise _fail(f"{where}.critical_codes", "codes must be non-empty strings")


@dataclasses.dataclass(frozen=True)
class StaleConfig:
    """No frames from a car for `factor` x its cadence while its ignition was on.

    The cadence is learned per car (median of its last frame intervals, vehicle time) and
    `cadence_ms` is used until then. The silence is measured on the wall clock by the timer.
    """

    cadence_ms: int = 1000
    factor: float = 3.0
    severity: Severity = "warning"

    def check(self, where: str, own: str) -> None:
        """Raise ConfigError unless cadence_ms > 0 and factor >= 1."""
        if self.cadence_ms <= 0:
            raise _fail(f"{where}.cadence_ms", "must be > 0")
        if self.factor < 1:
            raise _fail(f"{where}.factor", "must be >= 1")


@dataclasses.dataclass(frozen=True)
class EscalationConfig:
    """A warning episode still open after `after_min` minutes (vehicle time) becomes critical.

    Ten minutes: longer than any transient the on-delays let through (a hot climb, a cold
    morning start), short enough that a driver still on the road hears of it within a trip.
    Null disables. Not applied to `stale` (a silent car's vehicle clock does not advance).
    """

    after_min: float | None = 10.0

    def check(self, where: str, own: str) -> None:
        """Raise ConfigError on a non-positive duration."""
        if self.after_min is not None and self.after_min <= 0:
            raise _fail(f"{where}.after_min", "must be > 0 (or null to disable)")


def _coolant() -> ThresholdConfig:
    # Coolant: > 110 °C for 30 s warns (the simulator's COOLANT_WARN_C), >= 116 °C is critical
    # (boiling under a 1.0-1.1 bar cap), and the alert clears below 105 °C held a minute.
    return ThresholdConfig(warning=110.0, critical=116.0, clear_below=105.0, critical_inclusive=True)


def _trans() -> ThresholdConfig:
    # Automatic transmission fluid: > 105 °C shortens its life, > 120 °C varnishes it. Its
    # cooler sits in the radiator, so an overheating engine drags it up for minutes: attributed
    # to the coolant episode (see OilPressureConfig.suppressed_by).
    return ThresholdConfig(
        warning=105.0,
        critical=120.0,
        clear_below=100.0,
        critical_inclusive=False,
        suppressed_by=("coolant_temp",),
    )


@dataclasses.dataclass(frozen=True)
class RulesConfig:
    """Every rule's settings; `RulesConfig()` is the defaults."""

    coolant_temp: ThresholdConfig = dataclasses.field(default_factory=_coolant)
    trans_temp: ThresholdConfig = dataclasses.field(default_factory=_trans)
    oil_pressure: OilPressureConfig = dataclasses.field(default_factory=OilPressureConfig)
    battery_voltage: BatteryConfig = dataclasses.field(default_factory=BatteryConfig)
    tire_pressure_low: TirePressureConfig = dataclasses.field(default_factory=TirePressureConfig)
    tire_puncture: PunctureConfig = dataclasses.field(default_factory=PunctureConfig)
    brake_pad_wear: BrakePadConfig = dataclasses.field(default_factory=BrakePadConfig)
    dtc_new: DtcConfig = dataclasses.field(default_factory=DtcConfig)
    stale: StaleConfig = dataclasses.field(default_factory=StaleConfig)
    escalation: EscalationConfig = dataclasses.field(default_factory=EscalationConfig)

    def check(self, where: str = "rules") -> Self:
        """Check every section; returns self."""
        for f in dataclasses.fields(self):
            getattr(self, f.name).check(f"{where}: {f.name}", f.name)
        return self

    @classmethod
    def from_mapping(cls, doc: Mapping[str, Any] | None, source: str = "rules") -> RulesConfig:
        """The defaults with `doc`'s sections over them (a parsed rules.yaml)."""
        if doc is None:
            return cls().check(source)
        if not isinstance(doc, Mapping):
            raise ConfigError(f"{source}: expected a mapping of rule name to settings")
        defaults = cls()
        sections = [f.name for f in dataclasses.fields(cls)]
        values: dict[str, Any] = {}
        for name, raw in doc.items():
            if name not in sections:
                raise ConfigError(
                    f"{source}: {name}: unknown section (expected one of {', '.join(sections)})"
                )
            values[name] = _section(getattr(defaults, name), raw, f"{source}: {name}")
        return cls(**values).check(source)


def load_rules(path: Path | None = None) -> RulesConfig:
    """The defaults, overridden by the YAML at `path` when given."""
    if path is None:
        return RulesConfig().check("defaults")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read rules file {path}: {exc.strerror}") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return RulesConfig.from_mapping(doc, str(path))


def _section(default: Any, raw: Any, where: str) -> Any:
    """`default` (one rule's dataclass) with the keys of its YAML mapping replaced."""
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a mapping of settings")
    fields = [f.name for f in dataclasses.fields(default)]
    hints = get_type_hints(type(default))
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in fields:
            raise ConfigError(f"{where}.{key}: unknown key (expected one of {', '.join(fields)})")
        values[key] = _convert(value, hints[key], f"{where}.{key}")
    return dataclasses.replace(default, **values)


def _convert(value: Any, typ: Any, where: str) -> Any:
    """`value` as `typ`, or ConfigError naming the key and what it expected."""
    origin = get_origin(typ)
    if origin is types.UnionType:  # `float | None`
        options = [t for t in get_args(typ) if t is not type(None)]
        return None if value is None else _convert(value, options[0], where)
    if origin is Literal:
        choices = get_args(typ)
        if value not in choices:
            raise ConfigError(f"{where}: expected one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where}: expected a list of strings, got {value!r}")
        return tuple(value)
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if typ is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if typ is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    raise TypeError(f"unsupported rules setting type {typ!r} at {where}")  # a bug here, not in the file
