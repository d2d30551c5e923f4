"""Readiness probes: a real protocol round-trip, never a sleep.

`mqtt_ready` sends an anonymous MQTT 3.1.1 CONNECT and waits for a CONNACK (accepted, or
refused for want of credentials: the secure profile's broker is up all the same);
`kafka_ready` bootstraps an aiokafka client, which fetches cluster metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaClient
from aiokafka.errors import KafkaError

from services.common.errors import BrokerUnavailable
from services.common.kafka import client_kwargs
from services.common.settings import KafkaSettings

_CONNACK = 0x20
# CONNACK return codes of a running broker: accepted, bad user name or password, not
# authorized (what Mosquitto with `allow_anonymous false` answers an anonymous client).
_BROKER_ANSWERS = (0, 4, 5)


def _mqtt_connect_packet(client_id: str, keepalive: int = 10) -> bytes:
    cid = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02" + struct.pack("!H", keepalive)  # v3.1.1, clean session
    payload = struct.pack("!H", len(cid)) + cid
    body = variable + payload
    return bytes([0x10, len(body)]) + body  # fits in one length byte for short ids


async def mqtt_ready(host: str, port: int, within_s: float = 2.0) -> None:
    """One CONNECT/CONNACK round-trip; raises BrokerUnavailable unless the broker answers it."""
    try:
        async with asyncio.timeout(within_s):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(_mqtt_connect_packet(f"fleet-probe-{os.getpid()}"))
                await writer.drain()
                head = await reader.readexactly(4)
                writer.write(b"\xe0\x00")  # DISCONNECT
                with contextlib.suppress(OSError):
                    await writer.drain()
            finally:
                writer.close()
                with contextlib.suppress(OSError):
                    await writer.wait_closed()
    except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
        raise BrokerUnavailable(f"MQTT {host}:{port} did not answer CONNECT: {exc!r}") from None
    if head[0] != _CONNACK or head[3] not in _BROKER_ANSWERS:
        raise BrokerUnavailable(f"MQTT {host}:{port} refused CONNECT (return code {head[3]})")


async def kafka_ready(settings: KafkaSettings, within_s: float = 5.0) -> None:
    """A metadata round-trip with the cluster; raises BrokerUnavailable when none comes."""
    await _tcp_reachable(settings.bootstrap, within_s)  # quiet when nothing listens yet
    kwargs = client_kwargs(settings, "probe")
    kwargs["request_timeout_ms"] = max(1000, int(within_s * 1000))
    client = AIOKafkaClient(**kwargs)
    try:
        async with asyncio.timeout(within_s):
            await client.bootstrap()
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BrokerUnavailable(f"Kafka {settings.bootstrap} did not answer metadata: {exc!r}") from None
    finally:
        await client.close()


async def wait_until(
    probe: Callable[[], Awaitable[None]],
    *,
    deadline_s: float,
    alive: Callable[[], bool] = lambda: True,
    interval_s: float = 0.05,
) -> float:
    """Retry `probe` until it passes; returns seconds taken.

    Gives up with the probe's last error after `deadline_s`, or at once when `alive()` turns
    false (the process we wait for has died).
    """
    start = time.monotonic()
    while True:
        try:
            await probe()
            return time.monotonic() - start
        except BrokerUnavailable:
            if not alive() or time.monotonic() - start > deadline_s:
                raise
        await asyncio.sleep(interval_s)


async def _tcp_reachable(bootstrap: str, within_s: float) -> None:
    errors = []
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            async with asyncio.timeout(within_s):
                _, writer = await asyncio.open_connection(host, int(port))
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            return
        except (OSError, TimeoutError) as exc:
            errors.append(
                f"{server}: {exc.strerror if isinstance(exc, OSError) and exc.strerror else 'timeout'}"
            )
    raise BrokerUnavailable(f"no Kafka broker answers at {bootstrap} ({'; '.join(errors)})")


def port_is_free(host: str, port: int) -> bool:
    """True when nothing listens on host:port (bind test, as the broker will do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports the OS says are free now (tests, side-by-side stacks).

    All sockets stay bound until every port is picked, so one call never returns a port twice.
    """
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((host, 0))
            ports.append(int(sock.getsockname()[1]))
    return ports
