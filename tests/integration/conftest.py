"""Session fixtures: a private Mosquitto + Tansu on free ports, started the way `fleet up` does.

Two test runs on one machine never collide: each session picks free ports and its own stack
folder. Each test gets unique topic and group names from `names`.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from services.common import probes
from services.common.kafka import make_admin
from services.common.probes import free_ports
from services.common.settings import KafkaSettings, MqttSettings
from services.stack.launcher import Stack
from services.stack.processes import ChildProcess
from services.stack.settings import StackSettings

pytestmark = pytest.mark.integration


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration carries the `integration` marker."""
    for item in items:
        if "tests/integration" in str(item.path):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack_settings(tmp_path_factory: pytest.TempPathFactory) -> StackSettings:
    """Settings of this session's private stack."""
    mqtt_port, kafka_port = free_ports(2)
    return StackSettings(dir=tmp_path_factory.mktemp("stack"), mqtt_port=mqtt_port, kafka_port=kafka_port)


@pytest_asyncio.fixture(scope="session")
async def stack(stack_settings: StackSettings) -> AsyncIterator[Stack]:
    """Mosquitto + Tansu running, topics of infra/topics.yaml provisioned."""
    running = Stack(stack_settings)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture(scope="session")
def kafka(stack: Stack) -> KafkaSettings:
    """Client settings for this session's Kafka-protocol broker."""
    return stack.kafka


@pytest.fixture(scope="session")
def mqtt(stack: Stack) -> MqttSettings:
    """Client settings for this session's Mosquitto."""
    return stack.mqtt


@pytest_asyncio.fixture
async def admin(kafka: KafkaSettings):  # type: ignore[no-untyped-def]
    """A started admin client."""
    client = make_admin(kafka)
    await client.start()
    try:
        yield client
    finally:
        await client.close()


class Names:
    """Unique topic/group/client names for one test: <test>-<run>-<n>."""

    def __init__(self, test_name: str):
        stem = re.sub(r"[^a-zA-Z0-9]+", "-", test_name).strip("-")[:40]
        self.prefix = f"{stem}-{uuid.uuid4().hex[:8]}"
        self._counter = itertools.count()

    def __call__(self, kind: str) -> str:
        """A fresh name, e.g. names('topic') -> 'test-x-1a2b3c4d-topic-0'."""
        return f"{self.prefix}-{kind}-{next(self._counter)}"


@pytest.fixture
def names(request: pytest.FixtureRequest) -> Names:
    """Per-test unique names."""
    return Names(request.node.name)


@pytest.fixture
def fleet_env(stack: Stack) -> Iterator[dict[str, str]]:
    """Environment for a `fleet` subprocess aimed at this session's (running) stack."""
    stack_settings = stack.settings
    env = dict(os.environ)
    env.update(
        {
            "FLEET_KAFKA_BOOTSTRAP": stack_settings.kafka_bootstrap,
            "FLEET_MQTT_HOST": stack_settings.host,
            "FLEET_MQTT_PORT": str(stack_settings.mqtt_port),
        }
    )
    yield env


async def restart_child(stack: Stack, name: str) -> None:
    """Stop one of the stack's brokers (SIGTERM, as an operator would) and start it again."""
    old = next(c for c in stack.children if c.name == name)
    await old.stop(stack.settings.stop_timeout_s)
    new = ChildProcess(old.name, old.argv, old.log_file, old.env)
    await new.start()
    stack.children[stack.children.index(old)] = new
    s = stack.settings
    if name == "mosquitto":
        await probes.wait_until(
            lambda: probes.mqtt_ready(s.host, s.mqtt_port), deadline_s=10, alive=new.alive
        )
    else:
        await probes.wait_until(
            lambda: probes.kafka_ready(stack.kafka, within_s=1.0), deadline_s=10, alive=new.alive
        )
