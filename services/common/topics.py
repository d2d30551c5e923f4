"""Topic provisioning from infra/topics.yaml.

`plan()` is pure: it compares the file with what the broker has and says what to create,
what is fine and what mismatches. `apply()` carries a plan out: it creates missing topics,
never deletes or alters existing ones, and refuses to touch anything when a partition count
differs (co-partitioning is a correctness requirement).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError, TopicAlreadyExistsError, for_code

from services.common.errors import ConfigError, PartitionMismatch, TopicError
from services.common.settings import INFRA_DIR

DEFAULT_TOPICS_FILE = INFRA_DIR / "topics.yaml"


@dataclasses.dataclass(frozen=True)
class TopicSpec:
    """One topic as the file declares it."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


@dataclasses.dataclass(frozen=True)
class TopicPlan:
    """What `apply` would do: create these, leave these, and these disagree with the file."""

    create: tuple[TopicSpec, ...]
    present: tuple[TopicSpec, ...]
    mismatched: tuple[tuple[TopicSpec, int], ...]  # (spec, partitions on the broker)

    @property
    def changes_nothing(self) -> bool:
        """True when the broker already matches the file."""
        return not self.create and not self.mismatched


@dataclasses.dataclass(frozen=True)
class TopicInfo:
    """One topic as the broker describes it."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{where}: expected a positive integer, got {value!r}")
    return value


def _config(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping of Kafka topic configs")
    return {str(k): str(v) for k, v in value.items()}


def parse_topics(
    doc: Any, source: str = "topics.yaml", replication_factor: int | None = None
) -> list[TopicSpec]:
    """Validate a loaded topics document into specs; ConfigError names the bad entry."""
    if not isinstance(doc, dict) or not isinstance(doc.get("topics"), dict) or not doc["topics"]:
        raise ConfigError(f"{source}: expected a 'topics' mapping with at least one topic")
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise ConfigError(f"{source}: 'defaults' must be a mapping")
    specs = []
    for name, body in doc["topics"].items():
        body = body or {}
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: topic {name!r} must be a mapping")
        where = f"{source}: topic {name}"
        specs.append(
            TopicSpec(
                name=str(name),
                partitions=_positive_int(
                    body.get("partitions", defaults.get("partitions", 6)), f"{where}.partitions"
                ),
                replication_factor=replication_factor
                or _positive_int(
                    body.get("replication_factor", defaults.get("replication_factor", 1)),
                    f"{where}.replication_factor",
                ),
                config={
                    **_config(defaults.get("config"), f"{source}: defaults.config"),
                    **_config(body.get("config"), f"{where}.config"),
                },
            )
        )
    by_name = {s.name: s for s in specs}
    group = doc.get("co_partitioned") or []
    unknown = [n for n in group if n not in by_name]
    if unknown:
        raise ConfigError(f"{source}: co_partitioned names unknown topics: {', '.join(unknown)}")
    counts = {by_name[n].partitions for n in group}
    if len(counts) > 1:
        detail = ", ".join(f"{n}={by_name[n].partitions}" for n in group)
        raise ConfigError(f"{source}: co_partitioned topics must have equal partitions ({detail})")
    return specs


def load_topics(path: Path = DEFAULT_TOPICS_FILE, replication_factor: int | None = None) -> list[TopicSpec]:
    """Read and validate a topics file."""
    try:
        doc = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read topics file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    return parse_topics(doc, str(path), replication_factor)


def plan(specs: Sequence[TopicSpec], existing: Mapping[str, int]) -> TopicPlan:
    """Compare the file with the broker's {topic: partitions}."""
    create, present, mismatched = [], [], []
    for spec in specs:
        actual = existing.get(spec.name)
        if actual is None:
            create.append(spec)
        elif actual != spec.partitions:
            mismatched.append((spec, actual))
        else:
            present.append(spec)
    return TopicPlan(tuple(create), tuple(present), tuple(mismatched))


def mismatch_message(mismatched: Sequence[tuple[TopicSpec, int]]) -> str:
    """One line naming every topic whose partition count differs."""
    parts = ", ".join(f"{s.name} has {actual}, file says {s.partitions}" for s, actual in mismatched)
    return (
        f"partition count differs from topics.yaml ({parts}); co-partitioning needs equal counts: "
        "recreate the topic or fix the file"
    )


async def existing_partitions(
    admin: AIOKafkaAdminClient, names: Sequence[str] | None = None
) -> dict[str, int]:
    """{topic: partition count} for the named topics that exist (all topics when None)."""
    listed = set(await admin.list_topics())
    wanted = [n for n in (names if names is not None else sorted(listed)) if n in listed]
    if not wanted:
        return {}
    described = await admin.describe_topics(wanted)
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


async def apply(
    admin: AIOKafkaAdminClient, specs: Sequence[TopicSpec], *, dry_run: bool = False
) -> TopicPlan:
    """Create the missing topics; refuse everything on a partition mismatch."""
    result = plan(specs, await existing_partitions(admin, [s.name for s in specs]))
    if result.mismatched:
        raise PartitionMismatch(mismatch_message(result.mismatched))
    if dry_run or not result.create:
        return result
    response = await admin.create_topics(
        [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.config))
            for s in result.create
        ]
    )
    for name, code, message in _topic_errors(response):
        error = for_code(code)
        if error is TopicAlreadyExistsError:
            continue  # created by a concurrent apply: the re-check below catches a mismatch
        raise TopicError(f"cannot create topic {name}: {message or error.__name__}")
    after = plan(specs, await existing_partitions(admin, [s.name for s in specs]))
    if after.mismatched:
        raise PartitionMismatch(mismatch_message(after.mismatched))
    return result


def _topic_errors(response: Any) -> list[tuple[str, int, str | None]]:
    errors = []
    for entry in response.topic_errors:
        name, code = entry[0], entry[1]
        message = entry[2] if len(entry) > 2 else None
        if code != 0:
            errors.append((name, code, message))
    return errors


async def describe(admin: AIOKafkaAdminClient, names: Sequence[str]) -> list[TopicInfo]:
    """Partitions, replication and configs for each named topic that exists."""
    listed = set(await admin.list_topics())
    wanted = [n for n in names if n in listed]
    if not wanted:
        return []
    topics = await admin.describe_topics(wanted)
    configs: dict[str, dict[str, str]] = {n: {} for n in wanted}
    try:
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, n) for n in wanted]
        )
        for response in responses:
            for resource in response.resources:
                _code, _msg, _rtype, rname, entries = resource[:5]
                configs[rname] = {e[0]: e[1] for e in entries if e[1] is not None}
    except KafkaError:
        pass  # a broker without DescribeConfigs still gets partitions described
    return [
        TopicInfo(
            name=t["topic"],
            partitions=len(t["partitions"]),
            replication_factor=len(t["partitions"][0]["replicas"]) if t["partitions"] else 0,
            config=configs.get(t["topic"], {}),
        )
        for t in topics
        if t["error_code"] == 0
    ]
