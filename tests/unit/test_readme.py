"""README promises: the two commands first, and every setting documented."""

from pathlib import Path

from services.bridge.settings import BridgeSettings
from services.cold.settings import ColdSettings
from services.common.settings import KafkaSettings, LakeSettings, LogSettings, MqttSettings
from services.hot.settings import HotSettings
from services.hot.watch import AlertsSettings
from services.query.settings import QuerySettings
from services.stack.demo import DemoSettings
from services.stack.pipeline import UpSettings
from services.stack.settings import StackSettings
from simulators.simulation import SimulatorSettings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def test_readme_starts_with_the_two_commands():
    first_block = README.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make run", "make test"]


def test_every_setting_is_in_the_readme_table():
    for cls in (
        StackSettings,
        KafkaSettings,
        MqttSettings,
        LogSettings,
        SimulatorSettings,
        BridgeSettings,
        AlertsSettings,
        HotSettings,
        LakeSettings,
        ColdSettings,
        QuerySettings,
        DemoSettings,
        UpSettings,
    ):
        for var, _default, _help in cls.describe():
            assert f"| `{var}` |" in README, var


def test_readme_benchmark_table_is_the_current_results():
    from bench.results import markdown_table

    assert markdown_table() in README, "regenerate: python -m bench.results, paste into README"
