"""Factories for Kafka clients (aiokafka, and the broker settings Faust needs).

Every Kafka client of the project is built here, from `KafkaSettings`, so bootstrap, client
id and SASL/SSL are configured once. Only the Kafka protocol is used: nothing here knows
whether the broker is Tansu or Apache Kafka, except the idempotence fallback below, which
reacts to what the broker answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, UnknownError
from aiokafka.helpers import create_ssl_context

from services.common.errors import ConfigError
from services.common.settings import KafkaSettings

log = logging.getLogger(__name__)


# Faust group timings. Tansu's coordinator holds a JoinGroup for about half the *session*
# timeout, so Faust's default 60 s session makes every join wait ~30 s. 6 s is the smallest
# session Apache Kafka accepts by default (group.min.session.timeout.ms), so the same values
# stay valid there; 1 s heartbeats (from Faust's consumer thread) leave 6 chances per session
# under load. `fleet bench stack` measures these beside Faust's defaults.
FAUST_GROUP_SETTINGS: dict[str, Any] = {
    "broker_session_timeout": 6.0,
    "broker_heartbeat_interval": 1.0,
    "broker_rebalance_timeout": 10.0,
}


def client_kwargs(settings: KafkaSettings, role: str) -> dict[str, Any]:
    """Connection arguments shared by producers, consumers and admin clients."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap,
        "client_id": f"{settings.client_id}-{role}",
        "security_protocol": settings.security_protocol,
        "request_timeout_ms": settings.request_timeout_ms,
    }
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        try:
            kwargs["ssl_context"] = create_ssl_context(
                cafile=settings.ssl_cafile or None,
                certfile=settings.ssl_certfile or None,
                keyfile=settings.ssl_keyfile or None,
            )
        except OSError as exc:
            raise ConfigError(f"FLEET_KAFKA_SSL_*: cannot load TLS files: {exc}") from None
    if settings.security_protocol.startswith("SASL"):
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = settings.sasl_password
    return kwargs


def make_admin(settings: KafkaSettings) -> AIOKafkaAdminClient:
    """An admin client (not started)."""
    return AIOKafkaAdminClient(**client_kwargs(settings, "admin"))


# A live consumer's fetch wait (ms). Tansu does not answer a waiting fetch when records arrive, it
# answers when the wait ends: measured delivery p50 629 ms at aiokafka's 1,500 ms (Faust's), 71 ms
# at 500 ms (aiokafka's default), 4.7 ms at 20 ms. Pinned by test_conformance_kafka.py.
LIVE_FETCH_WAIT_MS = 50


def make_consumer(
    settings: KafkaSettings,
    *topics: str,
    group_id: str | None,
    role: str = "consumer",
    **overrides: Any,
) -> AIOKafkaConsumer:
    """A consumer (not started): manual commits, earliest reset, fast group joins, unless overridden.

    Session and heartbeat match FAUST_GROUP_SETTINGS: Tansu holds a JoinGroup for about half
    the session timeout, and 6 s is Apache Kafka's default minimum session.
    """
    kwargs: dict[str, Any] = {
        **client_kwargs(settings, role),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "isolation_level": "read_uncommitted",
        "session_timeout_ms": int(FAUST_GROUP_SETTINGS["broker_session_timeout"] * 1000),
        "heartbeat_interval_ms": int(FAUST_GROUP_SETTINGS["broker_heartbeat_interval"] * 1000),
    }
    kwargs.update(overrides)
    return AIOKafkaConsumer(*topics, **kwargs)


async def exact_end_offsets(
    settings: KafkaSettings, partitions: Iterable[TopicPartition], within_s: float = 2.0
) -> dict[TopicPartition, int]:
    """The offset after each partition's last record, even where the broker's end offset is short.

    Tansu answers ListOffsets(latest) with the newest record *batch's* base offset + 1 (pinned in
    test_conformance_kafka.py), so a partition written in batches reports an end offset inside its
    last batch. Fetching from that offset returns the whole batch; its last record gives the true
    end. On Apache Kafka the fetch finds the record before the end and changes nothing. A partition
    whose fetch brings nothing within `within_s` keeps the broker's answer.
    """
    wanted = list(partitions)
    consumer = make_consumer(
        settings, group_id=None, role="end-offsets", fetch_max_wait_ms=LIVE_FETCH_WAIT_MS
    )
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = dict(await consumer.end_offsets(wanted))
        pending = {tp for tp, end in ends.items() if end > 0}
        if pending:
            consumer.assign(list(pending))
            for tp in pending:
                consumer.seek(tp, ends[tp] - 1)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(within_s):
                    while pending:
                        fetched = await consumer.getmany(*pending, timeout_ms=100)
                        for tp, records in fetched.items():
                            if records:
                                ends[tp] = max(ends[tp], records[-1].offset + 1)
                                pending.discard(tp)
    finally:
        await consumer.stop()
    return {tp: ends[tp] for tp in wanted}


async def start_producer(
    settings: KafkaSettings, role: str = "producer", **overrides: Any
) -> AIOKafkaProducer:
    """Start a producer with acks=all; idempotent when the broker allows it.

    `FLEET_KAFKA_IDEMPOTENCE=auto` asks for an idempotent producer and, when the broker refuses
    InitProducerId (Tansu answers aiokafka's v0 request with UNKNOWN_SERVER_ERROR), falls back
    to acks=all without idempotence. Order per partition still holds (aiokafka keeps one batch
    in flight per partition); a retried batch may be written twice, which every consumer of
    this project tolerates (at-least-once, deduplicated by (vin, subsystem, seq)).
    """
    kwargs: dict[str, Any] = {**client_kwargs(settings, role), "acks": "all"}
    kwargs.update(overrides)
    want = settings.idempotence != "off" and kwargs.pop("enable_idempotence", True)
    if want:
        producer = AIOKafkaProducer(**kwargs, enable_idempotence=True)
        try:
            with _quiet_init_producer_id():
                await producer.start()
            return producer
        except UnknownError:
            await producer.stop()
            if settings.idempotence == "on":
                raise ConfigError(
                    "FLEET_KAFKA_IDEMPOTENCE=on but the broker refused an idempotent producer "
                    "(InitProducerId); use auto or off"
                ) from None
            log.warning(
                "broker refused an idempotent producer; using acks=all without idempotence",
                extra={"bootstrap": settings.bootstrap, "role": role},
            )
        except KafkaError:
            await producer.stop()
            raise
    producer = AIOKafkaProducer(**kwargs)
    try:
        await producer.start()
    except KafkaError:
        await producer.stop()
        raise
    return producer


class _DropInitProducerIdError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "InitProducerIdRequest" not in record.getMessage()


@contextlib.contextmanager
def _quiet_init_producer_id() -> Iterator[None]:
    """aiokafka logs the refusal at ERROR before raising it; we report it once, as a warning."""
    sender_log = logging.getLogger("aiokafka.producer.sender")
    quiet = _DropInitProducerIdError()
    sender_log.addFilter(quiet)
    try:
        yield
    finally:
        sender_log.removeFilter(quiet)


def faust_broker_settings(settings: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for `faust.App(...)`: broker URL, credentials, group timings."""
    urls = ";".join(f"kafka://{server.strip()}" for server in settings.bootstrap.split(","))
    kwargs: dict[str, Any] = {"broker": urls, **FAUST_GROUP_SETTINGS}
    if settings.security_protocol != "PLAINTEXT":
        import faust  # deferred: faust is heavy and only Faust services need it

        ssl_context = client_kwargs(settings, "faust").get("ssl_context")
        if settings.security_protocol.startswith("SASL"):
            kwargs["broker_credentials"] = faust.SASLCredentials(
                username=settings.sasl_username,
                password=settings.sasl_password,
                mechanism=settings.sasl_mechanism,
                ssl_context=ssl_context,
            )
        else:
            kwargs["broker_credentials"] = faust.SSLCredentials(ssl_context)
    return kwargs


async def require_topics(settings: KafkaSettings, topics: Sequence[str]) -> dict[str, int]:
    """{topic: partitions}; a missing topic is a ConfigError (auto-creation would pick its own count)."""
    from services.common.topics import existing_partitions

    admin = make_admin(settings)
    await admin.start()
    try:
        found = await existing_partitions(admin, topics)
    finally:
        await admin.close()
    missing = [t for t in topics if t not in found]
    if missing:
        raise ConfigError(f"Kafka topics missing: {', '.join(missing)} (run `fleet topics apply`)")
    return found
