"""`fleet topics apply` against the real broker: idempotent, non-destructive, strict on partitions."""

from __future__ import annotations

from pathlib import Path

import yaml
from aiokafka.admin import NewTopic

from services.common import topics
from tests.helpers import run_fleet


def topics_file(tmp_path: Path, names, partitions: int = 6) -> tuple[Path, list[str]]:
    group = [names("telemetry"), names("telemetry")]
    doc = {
        "defaults": {"partitions": partitions, "config": {"cleanup.policy": "delete"}},
        "co_partitioned": group,
        "topics": {
            group[0]: {"config": {"retention.ms": "604800000"}},
            group[1]: None,
            names("alerts"): None,
        },
    }
    path = tmp_path / "topics.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path, list(doc["topics"])


def test_apply_twice_creates_then_changes_nothing(fleet_env, tmp_path, names):
    path, created = topics_file(tmp_path, names)
    first = run_fleet(["topics", "apply", "--file", str(path)], fleet_env)
    assert first.returncode == 0, first.stderr
    assert [line.split()[0] for line in first.stdout.splitlines()[:3]] == ["created"] * 3
    assert "topics: created 3, 0 already present" in first.stdout

    second = run_fleet(["topics", "apply", "--file", str(path)], fleet_env)
    assert second.returncode == 0, second.stderr
    assert "created" not in second.stdout
    assert second.stdout.count("\nok ") + second.stdout.startswith("ok ") == 3
    assert "topics: nothing to do, 3 already present" in second.stdout

    described = run_fleet(["topics", "describe", "--file", str(path)], {**fleet_env, "COLUMNS": "250"})
    assert described.returncode == 0
    assert all(name in described.stdout for name in created)


def test_dry_run_changes_nothing(fleet_env, tmp_path, names):
    path, created = topics_file(tmp_path, names)
    dry = run_fleet(["topics", "apply", "--dry-run", "--file", str(path)], fleet_env)
    assert dry.returncode == 0, dry.stderr
    assert sum(line.startswith("would create ") for line in dry.stdout.splitlines()) == 3
    assert "topics: would create 3, 0 already present (dry run)" in dry.stdout
    listed = run_fleet(["topics", "list", "--file", str(path)], {**fleet_env, "COLUMNS": "250"})
    assert listed.stdout.count("missing") == 3


async def test_partition_mismatch_exits_non_zero_and_creates_nothing(fleet_env, tmp_path, names, admin):
    path, created = topics_file(tmp_path, names)
    await admin.create_topics([NewTopic(created[0], 4, 1)])  # someone made it by hand with 4

    result = run_fleet(["topics", "apply", "--file", str(path)], fleet_env)
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert f"{created[0]} has 4, file says 6" in result.stderr
    # refused as a whole: the other topics were not created either, nothing was deleted
    assert await topics.existing_partitions(admin, created) == {created[0]: 4}

    listed = run_fleet(["topics", "list", "--file", str(path)], fleet_env)
    assert "MISMATCH" in listed.stdout


def test_describe_of_a_missing_topic_says_so(fleet_env, names):
    result = run_fleet(["topics", "describe", names("nope")], fleet_env)
    assert result.returncode == 1
    assert "not on the broker" in result.stdout


def test_the_session_stack_has_the_design_topics(fleet_env):
    result = run_fleet(["topics", "list"], fleet_env)
    assert result.returncode == 0
    for name in ("telemetry.engine", "telemetry.deadletter", "alerts.health"):
        assert name in result.stdout
    assert "MISMATCH" not in result.stdout and "missing" not in result.stdout
