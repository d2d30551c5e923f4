import pytest
import yaml

from services.common.errors import ConfigError
from services.common.topics import (
    DEFAULT_TOPICS_FILE,
    TopicSpec,
    load_topics,
    mismatch_message,
    parse_topics,
    plan,
)

TELEMETRY = [
    "telemetry.engine",
    "telemetry.transmission",
    "telemetry.electronics",
    "telemetry.chassis",
    "telemetry.infotainment",
]


def test_project_topics_file_has_the_seven_design_topics():
    specs = {s.name: s for s in load_topics(DEFAULT_TOPICS_FILE)}
    assert set(specs) == {*TELEMETRY, "telemetry.deadletter", "alerts.health"}
    assert {specs[n].partitions for n in TELEMETRY} == {6}
    for spec in specs.values():
        assert spec.config["cleanup.policy"] == "delete"
        assert int(spec.config["retention.ms"]) > 0


def test_project_topics_file_declares_telemetry_co_partitioned():
    doc = yaml.safe_load(DEFAULT_TOPICS_FILE.read_text())
    assert sorted(doc["co_partitioned"]) == sorted(TELEMETRY)


def test_defaults_and_overrides_merge():
    specs = parse_topics(
        {
            "defaults": {"partitions": 3, "config": {"cleanup.policy": "delete", "retention.ms": 1}},
            "topics": {"a": None, "b": {"partitions": 5, "config": {"retention.ms": 2}}},
        }
    )
    assert specs == [
        TopicSpec("a", 3, 1, {"cleanup.policy": "delete", "retention.ms": "1"}),
        TopicSpec("b", 5, 1, {"cleanup.policy": "delete", "retention.ms": "2"}),
    ]


def test_replication_override_applies_to_all():
    specs = parse_topics({"topics": {"a": {}, "b": {"replication_factor": 2}}}, replication_factor=3)
    assert {s.replication_factor for s in specs} == {3}


def test_co_partitioned_topics_with_different_counts_are_refused():
    doc = {"co_partitioned": ["a", "b"], "topics": {"a": {"partitions": 6}, "b": {"partitions": 4}}}
    with pytest.raises(ConfigError, match=r"co_partitioned topics must have equal partitions \(a=6, b=4\)"):
        parse_topics(doc)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({}, "expected a 'topics' mapping"),
        ({"topics": {}}, "expected a 'topics' mapping"),
        ({"topics": {"a": {"partitions": 0}}}, "topic a.partitions: expected a positive integer"),
        ({"topics": {"a": {"partitions": "6"}}}, "topic a.partitions: expected a positive integer"),
        ({"topics": {"a": {"config": [1]}}}, "topic a.config: expected a mapping"),
        ({"topics": {"a": 5}}, "topic 'a' must be a mapping"),
        ({"co_partitioned": ["x"], "topics": {"a": {}}}, "co_partitioned names unknown topics: x"),
    ],
)
def test_bad_documents_are_one_line_config_errors(doc, message):
    with pytest.raises(ConfigError, match=message) as info:
        parse_topics(doc)
    assert "\n" not in str(info.value)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="cannot read topics file"):
        load_topics(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("topics: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_topics(bad)


def spec(name, partitions=6):
    return TopicSpec(name, partitions, 1, {})


def test_plan_creates_missing_keeps_matching_and_flags_mismatch():
    result = plan([spec("a"), spec("b"), spec("c")], {"b": 6, "c": 4, "other": 1})
    assert [s.name for s in result.create] == ["a"]
    assert [s.name for s in result.present] == ["b"]
    assert [(s.name, n) for s, n in result.mismatched] == [("c", 4)]
    assert not result.changes_nothing


def test_plan_on_a_provisioned_broker_changes_nothing():
    assert plan([spec("a"), spec("b")], {"a": 6, "b": 6}).changes_nothing


def test_mismatch_message_names_topic_and_both_counts():
    message = mismatch_message([(spec("telemetry.engine"), 4)])
    assert "telemetry.engine has 4, file says 6" in message
    assert "\n" not in message
