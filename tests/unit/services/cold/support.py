"""Shared pieces of the cold path's unit tests: fake records, frames, a fake consumer port."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import pyarrow.parquet as pq
from aiokafka import TopicPartition

from schemas.catalog import SUBSYSTEMS
from services.cold import layout
from simulators.fleet import Fleet, FleetConfig
from simulators.simulation import encode

HOUR_MS = 3_600_000


@dataclasses.dataclass(frozen=True)
class Rec:
    """A consumed record, as aiokafka's ConsumerRecord shows it to the buffer."""

    offset: int
    value: bytes | None
    key: bytes | None = None
    timestamp: int = 0
    headers: tuple[tuple[str, bytes], ...] = ()


def frames(subsystem: str = "engine", n: int = 10, cars: int = 3, seed: int = 1, start_ts: int | None = None):
    """`n` encoded frames of one subsystem from a seeded fleet, as (vin, ts, payload)."""
    config = (
        FleetConfig(cars=cars, seed=seed)
        if start_ts is None
        else FleetConfig(cars=cars, seed=seed, start_ts=start_ts)
    )
    fleet = Fleet(config)
    out = []
    while len(out) < n:
        out += [(vin, frame["ts"], encode(frame)) for vin, sub, frame in fleet.step() if sub == subsystem]
    return out[:n]


def records(payloads, first_offset: int = 0, kafka_ts: int = 1_000, received: int | None = 1_795_000_000_000):
    """Fake records at consecutive offsets for (vin, ts, payload) items."""
    headers = (("mqtt_topic", b"fleet/x/engine"),) + (
        (("received_ms", str(received).encode()),) if received else ()
    )
    return [
        Rec(first_offset + i, payload, vin.encode(), kafka_ts + i, headers)
        for i, (vin, _ts, payload) in enumerate(payloads)
    ]


def lake_offsets(
    root: Path, kind: str, topic: str, partition: int, *, visible_only: bool = True
) -> list[int]:
    """Every kafka_offset of one partition in the lake (visible rows and rejects), sorted, duplicates kept."""
    files = layout.visible(layout.scan(root, kind)) if visible_only else layout.scan(root, kind)
    out: list[int] = []
    for f in files:
        if f.topic == topic and f.partition == partition:
            out += pq.read_table(f.path, columns=["kafka_offset"]).column("kafka_offset").to_pylist()
    return sorted(out)


class FakePort:
    """The archiver's view of the consumer, in memory; records what it was asked to do.

    `commit` checks the write-then-commit rule itself: a committed offset must be covered by
    renamed files in the lake at the moment of the commit.
    """

    def __init__(self, root: Path | None = None, kinds: Mapping[str, str] | None = None):
        self.root = root
        self.kinds = dict(kinds or {})
        self.commits: list[tuple[TopicPartition, int]] = []
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.paused: set[TopicPartition] = set()
        self.fail_commits = False
        self.highwaters: dict[TopicPartition, int] = {}  # unknown unless a test sets it

    async def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        from aiokafka.errors import CommitFailedError

        if self.fail_commits:
            raise CommitFailedError("rebalancing")
        for tp, offset in offsets.items():
            if self.root is not None:
                covered = layout.next_offset(
                    layout.scan(self.root, self.kinds[tp.topic]), tp.topic, tp.partition
                )
                assert covered is not None and covered >= offset, (
                    f"commit {offset} ahead of the lake ({covered})"
                )
            self.commits.append((tp, offset))

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self.seeks.append((partition, offset))

    def pause(self, *partitions: TopicPartition) -> None:
        self.paused |= set(partitions)

    def resume(self, *partitions: TopicPartition) -> None:
        self.paused -= set(partitions)

    def highwater(self, partition: TopicPartition) -> int | None:
        return self.highwaters.get(partition)


KINDS = {f"telemetry.{s}": s for s in SUBSYSTEMS} | {"alerts.health": "alerts"}
