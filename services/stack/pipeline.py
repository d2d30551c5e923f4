"""The pipeline's services as children of the local stack: bridge, hot, cold.

    endpoints = MetricsEndpoints.from_settings(bridge, hot, cold)     # where each serves /metrics
    specs = pipeline_services(stack_settings, endpoints, lake_dir)     # ServiceSpecs for `Stack`
    stack = Stack(stack_settings, specs)

Each service runs as `fleet <verb>` with the stack's brokers and its own metrics port in its
environment, so what `fleet up` starts is exactly what a person would start by hand. A service
is ready when its /metrics endpoint answers (the bridge: once its MQTT session is subscribed,
so no frame published after `start()` can miss it).

The lake and the embedded broker: Tansu keeps its topics in memory, so every stack starts at
offset 0, while the cold writer resumes each partition after the offsets its lake already
holds. A lake left by an earlier stack would make it skip the new records; `set_lake_aside`
moves such a lake out of the way (nothing is deleted).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import os
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from services.common import probes
from services.common.errors import BrokerUnavailable
from services.common.metrics import parse_text, scrape
from services.common.settings import KafkaSettings, LakeSettings, Settings, env
from services.stack.launcher import ServiceSpec
from services.stack.settings import StackSettings

# Service name -> the metrics port's variable (for the one-line "port in use" error).
PORT_VARS = {
    "bridge": "FLEET_BRIDGE_METRICS_PORT",
    "hot": "FLEET_HOT_METRICS_PORT",
    "cold": "FLEET_COLD_METRICS_PORT",
}
SERVICES = tuple(PORT_VARS)


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """host:port of one service's /metrics."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """What the state file records and `fleet status` shows."""
        return f"http://{self.host}:{self.port}/metrics"

    @classmethod
    def from_url(cls, url: str) -> Endpoint | None:
        """Parse `http://host:port/metrics`; None for anything else (a broker's endpoint)."""
        if not url.startswith("http://"):
            return None
        hostport = url.removeprefix("http://").split("/", 1)[0]
        host, _, port = hostport.rpartition(":")
        return cls(host, int(port)) if host and port.isdigit() else None


@dataclasses.dataclass(frozen=True)
class MetricsEndpoints:
    """Where bridge, hot and cold serve /metrics."""

    bridge: Endpoint
    hot: Endpoint
    cold: Endpoint

    def items(self) -> list[tuple[str, Endpoint]]:
        """(service name, endpoint) in start order."""
        return [(name, getattr(self, name)) for name in SERVICES]

    @classmethod
    def resolve(cls, configured: Mapping[str, tuple[str, int]]) -> MetricsEndpoints:
        """The configured (host, port) per service; port 0 ("any free") becomes a free port now,
        because the launcher must know where to look. (Stack.start checks the ports are free.)"""
        picked: dict[str, Endpoint] = {}
        zero = [name for name in SERVICES if configured[name][1] == 0]
        free = iter(probes.free_ports(len(zero))) if zero else iter(())
        for name in SERVICES:
            host, port = configured[name]
            picked[name] = Endpoint(host, port if port else next(free))
        return cls(**picked)


def fleet_command(verb: str) -> list[str]:
    """argv running `fleet <verb>` from this installation (the console script beside python)."""
    script = Path(sys.executable).parent / "fleet"
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script), verb]
    return [sys.executable, "-m", f"services.{verb}"]  # every service package has a __main__


def service_env(
    stack: StackSettings, endpoints: MetricsEndpoints, lake_dir: Path
) -> dict[str, dict[str, str]]:
    """Per service, the variables that aim it at this stack (the rest is inherited)."""
    common = {
        "FLEET_KAFKA_BOOTSTRAP": stack.kafka_bootstrap,
        "FLEET_MQTT_HOST": stack.host,
        "FLEET_MQTT_PORT": str(stack.mqtt_port),
    }
    return {
        "bridge": {
            **common,
            "FLEET_BRIDGE_METRICS_HOST": endpoints.bridge.host,
            "FLEET_BRIDGE_METRICS_PORT": str(endpoints.bridge.port),
        },
        "hot": {
            **common,
            "FLEET_HOT_METRICS_HOST": endpoints.hot.host,
            "FLEET_HOT_METRICS_PORT": str(endpoints.hot.port),
            "FLEET_HOT_DATADIR": str((stack.dir / "hot").resolve()),
        },
        "cold": {
            **common,
            "FLEET_COLD_METRICS_HOST": endpoints.cold.host,
            "FLEET_COLD_METRICS_PORT": str(endpoints.cold.port),
            "FLEET_LAKE_DIR": str(lake_dir.resolve()),
        },
    }


async def metrics_values(endpoint: Endpoint, within_s: float = 2.0) -> dict[str, float]:
    """One scrape, parsed; BrokerUnavailable when the endpoint does not answer."""
    try:
        return parse_text(await scrape(endpoint.host, endpoint.port, within_s))
    except (OSError, TimeoutError, ValueError) as exc:
        raise BrokerUnavailable(f"{endpoint.url} did not answer: {exc!r}") from None


def metrics_ready(
    endpoint: Endpoint, condition: Callable[[dict[str, float]], bool] | None = None
) -> Callable[[], Awaitable[None]]:
    """A readiness probe: the endpoint answers (and `condition` holds on its values)."""

    async def probe() -> None:
        values = await metrics_values(endpoint, within_s=1.0)
        if condition is not None and not condition(values):
            raise BrokerUnavailable(f"{endpoint.url} answers, not ready yet")

    return probe


def _bridge_subscribed(values: dict[str, float]) -> bool:
    return values.get("fleet_bridge_mqtt_connected", 0) >= 1


def pipeline_services(stack: StackSettings, endpoints: MetricsEndpoints, lake_dir: Path) -> list[ServiceSpec]:
    """bridge, hot, cold as ServiceSpecs, in start order (the launcher stops them first, reversed)."""
    env = service_env(stack, endpoints, lake_dir)
    conditions: dict[str, Callable[[dict[str, float]], bool] | None] = {
        "bridge": _bridge_subscribed,
        "hot": None,
        "cold": None,
    }
    return [
        ServiceSpec(
            name=name,
            argv=fleet_command(name),
            env=env[name],
            ready=metrics_ready(endpoint, conditions[name]),
            endpoint=endpoint.url,
            ports=((endpoint.host, endpoint.port, f"{PORT_VARS[name]} (0: any free port)"),),
        )
        for name, endpoint in endpoints.items()
    ]


def lake_has_files(lake_dir: Path) -> bool:
    """True when the lake holds any Parquet file (of an earlier run)."""
    if not lake_dir.is_dir():
        return False
    return any(True for _ in lake_dir.rglob("*.parquet"))


def set_lake_aside(lake_dir: Path, now: dt.datetime | None = None) -> Path | None:
    """Rename a non-empty lake to `<lake>.<UTC time>`; returns the new path (None: nothing to move)."""
    if not lake_has_files(lake_dir):
        return None
    stamp = (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")
    target = lake_dir.with_name(f"{lake_dir.name}.{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = lake_dir.with_name(f"{lake_dir.name}.{stamp}-{n}")
    lake_dir.rename(target)
    return target


@dataclasses.dataclass(frozen=True)
class UpSettings(Settings):
    """What `fleet up` runs besides the brokers."""

    services: bool = env(
        "FLEET_UP_SERVICES",
        True,
        "also run bridge, hot and cold (--no-services: only the brokers and topics)",
    )


def add_lake_dir_argument(parser: argparse.ArgumentParser) -> None:
    """`--lake-dir` (LakeSettings' `dir`, renamed: the stack's own `--dir` is FLEET_STACK_DIR)."""
    default = LakeSettings().dir
    parser.add_argument(
        "--lake-dir",
        dest="lake_dir",
        default=None,
        metavar="LAKE_DIR",
        help=f"root of the Parquet lake the cold writer fills [env FLEET_LAKE_DIR, default {str(default)!r}]",
    )


def configured_endpoints(environ: Mapping[str, str] | None = None) -> MetricsEndpoints:
    """The services' metrics addresses from their settings (FLEET_{BRIDGE,HOT,COLD}_METRICS_*)."""
    from services.bridge.settings import BridgeSettings
    from services.cold.settings import ColdSettings
    from services.hot.settings import HotSettings

    bridge = BridgeSettings.from_env(environ)
    hot = HotSettings.from_env(environ)
    cold = ColdSettings.from_env(environ)
    return MetricsEndpoints.resolve(
        {
            "bridge": (bridge.metrics_host, bridge.metrics_port),
            "hot": (hot.metrics_host, hot.metrics_port),
            "cold": (cold.metrics_host, cold.metrics_port),
        }
    )


# --- `fleet status`: rates and lag ----------------------------------------------------------------

# Per service, the counters `fleet status` shows: (label, metric summed over its labels).
STATUS_COUNTERS: dict[str, tuple[tuple[str, str], ...]] = {
    "bridge": (
        ("received", "fleet_bridge_received_total"),
        ("produced", "fleet_bridge_produced_total"),
        ("dead-lettered", "fleet_bridge_deadlettered_total"),
    ),
    "hot": (("frames", "fleet_hot_frames_total"), ("alerts", "fleet_hot_alerts_total")),
    "cold": (("read", "fleet_cold_consumed_total"), ("rows", "fleet_cold_rows_written_total")),
}


def metric_sum(values: Mapping[str, float], name: str) -> float:
    """A metric's value summed over its label sets (`name` and every `name{...}`)."""
    return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))


def rate_rows(
    service: str, before: Mapping[str, float], after: Mapping[str, float], interval_s: float
) -> list[tuple[str, str, str]]:
    """(counter, total, rate) per counter of `service`, from two scrapes `interval_s` apart."""
    rows = []
    for label, metric in STATUS_COUNTERS.get(service, ()):
        a, b = metric_sum(before, metric), metric_sum(after, metric)
        rate = f"{(b - a) / interval_s:,.0f}/s" if interval_s > 0 and b >= a else "restarted"
        rows.append((label, f"{b:,.0f}", rate))
    return rows


async def two_scrapes(
    endpoint: Endpoint, interval_s: float = 1.0
) -> tuple[dict[str, float], dict[str, float], float]:
    """Scrape, wait, scrape again: (first, second, seconds between them)."""
    t0 = time.monotonic()
    first = await metrics_values(endpoint)
    await asyncio.sleep(interval_s)
    t1 = time.monotonic()
    second = await metrics_values(endpoint)
    return first, second, t1 - t0


def lag_of(committed: Mapping[Any, int], ends: Mapping[Any, int]) -> int:
    """Records between each partition's committed offset and its end offset, summed (never negative).

    A partition with no commit yet (offset -1) counts from 0: its group has read nothing of it."""
    return sum(max(0, end - max(0, committed.get(tp, 0))) for tp, end in ends.items())


async def group_lag(kafka: KafkaSettings, group: str, topics: Sequence[str]) -> int | None:
    """Consumer lag of `group` over `topics` (committed vs end offsets); None when the group
    has committed nothing on them yet.

    Read with a consumer that names the group but never subscribes, so it never joins it (the
    group does not rebalance); OffsetFetch through it, because aiokafka's admin client cannot
    decode Tansu's OffsetFetch answer."""
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    from services.common.kafka import make_admin, make_consumer
    from services.common.topics import existing_partitions

    admin = make_admin(kafka)
    consumer = make_consumer(kafka, group_id=group, role="status")
    try:
        await admin.start()
        found = await existing_partitions(admin, list(topics))
        partitions = [TopicPartition(t, p) for t, n in sorted(found.items()) for p in range(n)]
        await consumer.start()
        committed: dict[Any, int] = {}
        for tp in partitions:
            offset = await consumer.committed(tp)
            if offset is not None and offset >= 0:
                committed[tp] = offset
        if not committed:
            return None
        ends = await consumer.end_offsets(partitions)
    except KafkaError as exc:
        raise BrokerUnavailable(f"Kafka at {kafka.bootstrap}: {exc!r}") from None
    finally:
        await consumer.stop()
        await admin.close()
    return lag_of(committed, ends)
