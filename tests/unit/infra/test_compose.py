"""docker-compose.yml cannot run here (no Docker engine); check what can be checked offline."""

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_kafka_runs_in_kraft_mode_without_auto_created_topics():
    env = COMPOSE["services"]["kafka"]["environment"]
    assert COMPOSE["services"]["kafka"]["image"].startswith("apache/kafka:")
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # Tansu-style 4-partition surprises avoided


def test_topics_are_provisioned_by_the_same_cli_once_kafka_is_healthy():
    topics = COMPOSE["services"]["topics"]
    assert topics["command"] == ["topics", "apply"]
    assert topics["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert topics["environment"]["FLEET_KAFKA_BOOTSTRAP"] == "kafka:29092"
    assert (ROOT / topics["build"]["dockerfile"]).is_file()


def test_mosquitto_mounts_files_that_exist_and_uses_the_dev_settings():
    mounts = [v.split(":")[0] for v in COMPOSE["services"]["mosquitto"]["volumes"] if v.startswith("./")]
    assert mounts, "mosquitto mounts its config from the repo"
    for path in mounts:
        assert (ROOT / path).is_file(), path
    assert "./infra/mosquitto/dev.conf" in mounts
