"""Rule settings: defaults agree with the simulator's signatures, YAML overrides, one-line errors."""

from __future__ import annotations

import dataclasses

import pytest

from services.common.errors import ConfigError
from services.hot.config import DEFAULT_RULES_PATH, RULE_NAMES, RulesConfig, load_rules
from simulators import faults

DEFAULTS = RulesConfig()


def test_defaults_are_the_simulators_fault_signatures():
    # The labels' onset_ts is when the simulator saw these conditions: the rules must test the same.
    assert DEFAULTS.coolant_temp.warning == faults.COOLANT_WARN_C
    assert DEFAULTS.oil_pressure.idle_min_kpa == faults.OIL_MIN_IDLE_KPA
    assert DEFAULTS.oil_pressure.per_1000_rpm_kpa == faults.OIL_MIN_PER_1000_RPM_KPA
    assert DEFAULTS.battery_voltage.running_min_v == faults.BATTERY_RUNNING_MIN_V
    assert DEFAULTS.tire_pressure_low.low_fraction == faults.TIRE_LOW_FRACTION
    assert DEFAULTS.tire_puncture.kpa_per_min == faults.PUNCTURE_KPA_PER_MIN
    assert DEFAULTS.brake_pad_wear.worn_pct == faults.BRAKE_PAD_WORN_PCT
    assert DEFAULTS.dtc_new.critical_codes == faults.CRITICAL_DTCS


@pytest.mark.parametrize("rpm", [0, 500, 750, 1000, 1001, 1500, 2000, 3456.7, 6500, 8000])
def test_oil_minimum_is_the_simulators_formula(rpm):
    assert DEFAULTS.oil_pressure.minimum_kpa(rpm) == pytest.approx(faults.oil_pressure_minimum(rpm))


def test_rule_names_are_the_labels_rules_plus_transmission():
    labelled = {spec.rule for spec in faults.FAULTS.values()}
    assert labelled <= set(RULE_NAMES)
    assert set(RULE_NAMES) - labelled == {"trans_temp"}  # no fault kind targets the gearbox


def test_the_issues_numbers():
    c = DEFAULTS
    assert (c.coolant_temp.warning, c.coolant_temp.critical, c.coolant_temp.clear_below) == (110, 116, 105)
    assert c.coolant_temp.critical_inclusive and not c.trans_temp.critical_inclusive  # >= 116, > 120
    assert (c.coolant_temp.on_delay_s, c.coolant_temp.off_delay_s) == (30, 60)
    assert (c.trans_temp.warning, c.trans_temp.critical) == (105, 120)
    assert (c.battery_voltage.running_min_v, c.battery_voltage.running_max_v) == (13.0, 15.0)
    assert c.battery_voltage.resting_min_v == 12.0
    assert (c.tire_pressure_low.n, c.tire_pressure_low.m) == (3, 5)
    assert c.tire_puncture.severity == "critical"
    assert c.stale.factor == 3
    assert c.escalation.after_min == 10


def test_no_path_gives_the_defaults():
    assert load_rules() == DEFAULTS


def test_the_shipped_file_spells_out_the_defaults():
    # infra/rules.yaml documents every setting; changing one there or here is a deliberate edit of both.
    assert DEFAULT_RULES_PATH.exists()
    assert load_rules(DEFAULT_RULES_PATH) == DEFAULTS


def test_a_file_overrides_only_what_it_names(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(
        "coolant_temp:\n  on_delay_s: 10\nstale: {factor: 5}\ndtc_new: {critical_codes: [P0001]}\n"
    )
    config = load_rules(path)
    assert config.coolant_temp.on_delay_s == 10.0 and isinstance(config.coolant_temp.on_delay_s, float)
    assert config.coolant_temp.warning == 110.0
    assert config.stale.factor == 5.0
    assert config.dtc_new.critical_codes == ("P0001",)
    assert config.trans_temp == DEFAULTS.trans_temp  # the shared class keeps each rule's defaults
    assert (
        dataclasses.replace(
            config, coolant_temp=DEFAULTS.coolant_temp, stale=DEFAULTS.stale, dtc_new=DEFAULTS.dtc_new
        )
        == DEFAULTS
    )


def test_an_empty_file_or_section_is_the_defaults(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("# nothing\n")
    assert load_rules(path) == DEFAULTS
    path.write_text("coolant_temp:\n")
    assert load_rules(path) == DEFAULTS


def test_null_disables_escalation_and_sets_a_fleet_placard(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("escalation: {after_min: null}\ntire_pressure_low: {placard_kpa: 240}\n")
    config = load_rules(path)
    assert config.escalation.after_min is None
    assert config.tire_pressure_low.placard_kpa == 240.0


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("coolant_temp: {warnig: 100}", "coolant_temp.warnig: unknown key"),
        ("coolent_temp: {}", "coolent_temp: unknown section"),
        ("coolant_temp: {warning: hot}", "coolant_temp.warning: expected a number, got 'hot'"),
        ("coolant_temp: {warning: true}", "coolant_temp.warning: expected a number"),
        ("coolant_temp: {critical_inclusive: 1}", "coolant_temp.critical_inclusive: expected true or false"),
        ("stale: {cadence_ms: 1000.5}", "stale.cadence_ms: expected an integer"),
        ("tire_pressure_low: {n: 2.0}", "tire_pressure_low.n: expected an integer"),
        ("oil_pressure: {severity: fatal}", "oil_pressure.severity: expected one of info, warning, critical"),
        ("dtc_new: {critical_codes: P0217}", "dtc_new.critical_codes: expected a list of strings"),
        ("dtc_new: {critical_codes: [P0217, 300]}", "dtc_new.critical_codes: expected a list of strings"),
        ("coolant_temp: 110", "coolant_temp: expected a mapping"),
        ("- coolant_temp", "expected a mapping of rule name"),
        ("coolant_temp: {clear_below: 112}", "coolant_temp.clear_below: 112.0 must be below warning"),
        ("trans_temp: {critical: 100}", "trans_temp.critical: 100.0 must be above warning"),
        ("brake_pad_wear: {on_delay_s: -1}", "brake_pad_wear.on_delay_s: must be >= 0"),
        ("tire_pressure_low: {n: 6}", "tire_pressure_low.n: expected 1 <= n <= m"),
        ("tire_pressure_low: {clear_fraction: 0.7}", "tire_pressure_low.clear_fraction"),
        ("tire_puncture: {window_s: 0}", "tire_puncture.window_s: must be > 0"),
        ("battery_voltage: {running_max_v: 12}", "battery_voltage.running_min_v: must be below"),
        ("stale: {factor: 0.5}", "stale.factor: must be >= 1"),
        ("escalation: {after_min: 0}", "escalation.after_min: must be > 0"),
        ("oil_pressure: {suppressed_by: [oil_pressure]}", "oil_pressure.suppressed_by: 'oil_pressure'"),
        ("trans_temp: {suppressed_by: [coolant]}", "trans_temp.suppressed_by: 'coolant' is not another rule"),
        ("coolant_temp: {warning: [1", "not valid YAML"),
    ],
)
def test_bad_files_fail_with_one_line_naming_the_key(tmp_path, text, needle):
    path = tmp_path / "rules.yaml"
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as info:
        load_rules(path)
    message = str(info.value)
    assert needle in message
    assert str(path) in message
    assert "\n" not in message


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cannot read rules file"):
        load_rules(tmp_path / "absent.yaml")


def test_config_objects_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        DEFAULTS.coolant_temp.warning = 1.0  # type: ignore[misc]
