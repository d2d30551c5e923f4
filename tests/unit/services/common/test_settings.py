import argparse
import dataclasses
from pathlib import Path

import pytest

from services.common.errors import ConfigError
from services.common.settings import KafkaSettings, MqttSettings, Settings, env


@dataclasses.dataclass(frozen=True)
class Sample(Settings):
    name: str = env("FLEET_T_NAME", "x", "a name")
    count: int = env("FLEET_T_COUNT", 3, "a count")
    ratio: float = env("FLEET_T_RATIO", 0.5, "a ratio")
    flag: bool = env("FLEET_T_FLAG", False, "a flag")
    path: Path = env("FLEET_T_PATH", Path("a"), "a path")
    mode: str = env("FLEET_T_MODE", "fast", "a mode", choices=("fast", "slow"))


def test_defaults_when_environment_is_empty():
    assert Sample.from_env({}) == Sample()


def test_each_type_parses_from_its_variable():
    s = Sample.from_env(
        {
            "FLEET_T_NAME": "n",
            "FLEET_T_COUNT": "7",
            "FLEET_T_RATIO": "1.5",
            "FLEET_T_FLAG": "yes",
            "FLEET_T_PATH": "/tmp/p",
            "FLEET_T_MODE": "slow",
        }
    )
    assert s == Sample("n", 7, 1.5, True, Path("/tmp/p"), "slow")


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("FLEET_T_COUNT", "seven", "FLEET_T_COUNT='seven': expected an integer"),
        ("FLEET_T_RATIO", "x", "FLEET_T_RATIO='x': expected a number"),
        ("FLEET_T_FLAG", "maybe", "FLEET_T_FLAG='maybe': expected true or false"),
        ("FLEET_T_MODE", "medium", "FLEET_T_MODE='medium': expected one of fast, slow"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(var, value, expected):
    with pytest.raises(ConfigError) as info:
        Sample.from_env({var: value})
    assert str(info.value) == expected
    assert "\n" not in str(info.value)


def test_flags_override_environment_and_unset_flags_do_not():
    parser = argparse.ArgumentParser()
    Sample.add_arguments(parser)
    args = parser.parse_args(["--count", "9", "--flag"])
    s = Sample.from_args(args, {"FLEET_T_COUNT": "2", "FLEET_T_NAME": "from-env"})
    assert (s.count, s.flag, s.name) == (9, True, "from-env")


def test_a_bad_flag_value_names_the_flag():
    parser = argparse.ArgumentParser()
    Sample.add_arguments(parser)
    with pytest.raises(ConfigError, match="--count='x': expected an integer"):
        Sample.from_args(parser.parse_args(["--count", "x"]), {})


def test_help_shows_env_name_and_default():
    parser = argparse.ArgumentParser()
    KafkaSettings.add_arguments(parser)
    text = parser.format_help()
    assert "FLEET_KAFKA_BOOTSTRAP" in text
    assert "'127.0.0.1:9092'" in text


def test_settings_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        Sample().count = 2  # type: ignore[misc]


@pytest.mark.parametrize("bootstrap", ["", "localhost", "host:port", ":9092"])
def test_kafka_bootstrap_must_be_host_port(bootstrap):
    with pytest.raises(ConfigError, match="FLEET_KAFKA_BOOTSTRAP"):
        KafkaSettings.from_env({"FLEET_KAFKA_BOOTSTRAP": bootstrap})


def test_kafka_bootstrap_accepts_a_list():
    assert KafkaSettings.from_env({"FLEET_KAFKA_BOOTSTRAP": "a:1, b:2"}).bootstrap == "a:1, b:2"


def test_sasl_needs_credentials():
    with pytest.raises(ConfigError, match="FLEET_KAFKA_SASL_USERNAME"):
        KafkaSettings.from_env({"FLEET_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})


def test_mqtt_port_range():
    with pytest.raises(ConfigError, match="FLEET_MQTT_PORT=70000"):
        MqttSettings.from_env({"FLEET_MQTT_PORT": "70000"})


def test_describe_lists_every_field_for_the_readme():
    rows = KafkaSettings.describe()
    assert ("FLEET_KAFKA_BOOTSTRAP", "'127.0.0.1:9092'", "Kafka bootstrap servers") in rows
    assert len(rows) == len(dataclasses.fields(KafkaSettings))
