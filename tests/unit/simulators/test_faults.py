from pathlib import Path

import pytest

from services.common.errors import ConfigError
from simulators.faults import FAULT_KINDS, load_scenario

EXAMPLE = Path(__file__).resolve().parents[3] / "simulators" / "scenarios" / "every-fault.yaml"


def test_example_scenario_has_every_fault_kind():
    entries = load_scenario(EXAMPLE)
    assert sorted(e.fault for e in entries) == sorted(FAULT_KINDS)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("faults: 3", "expected 'faults:' with a list"),
        ("faults: [{car: 0, fault: warp_core_breach, at_s: 1}]", "fault 'warp_core_breach' is not one of"),
        ("faults: [{car: -1, fault: tire_puncture, at_s: 1}]", "car must be a fleet index"),
        ("faults: [{car: 0, fault: tire_puncture, at_s: -5}]", "at_s must be seconds >= 0"),
        ("faults: [{car: 0, fault: tire_puncture, at_s: 5, duration_s: 0}]", "duration_s must be > 0"),
        ("faults: [unclosed", "not valid YAML"),
    ],
)
def test_bad_scenarios_are_one_line_config_errors(tmp_path, text, message):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        load_scenario(path)
    assert "\n" not in str(info.value)
