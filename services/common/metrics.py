"""Prometheus text exposition: a histogram type, line formatting, and a tiny HTTP endpoint.

Services keep their counters as plain ints on their own objects (the hot path pays one
`+= 1`, no registry, no lock: every service is one asyncio thread) and render them on each
scrape:

    server = MetricsServer(render=lambda: bridge.metrics.render(), host="127.0.0.1", port=9464)
    await server.start()    # GET /metrics -> text/plain; version=0.0.4
    await server.stop()

No client library: the exposition format is a few lines, and the endpoint must not add a
thread to a service whose throughput depends on holding the GIL alone.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

from services.common.errors import ConfigError

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds, for latencies from a millisecond (same host) to a long Kafka outage.
LATENCY_BUCKETS_S = (
    0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip


class Histogram:
    """Cumulative-bucket histogram with exact count and sum, plus quantile estimates."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS_S):
        self.bounds = tuple(sorted(buckets))
        self.counts = [0] * (len(self.bounds) + 1)  # the last slot is +Inf
        self.count = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        """Record one value."""
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.sum += value

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding the q-quantile (inf when it is past the last bound)."""
        if self.count == 0:
            return 0.0
        rank = q * self.count
        seen = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            seen += n
            if seen >= rank:
                return bound
        return float("inf")

    def lines(self, name: str, help: str) -> list[str]:
        """Exposition lines: _bucket{le=...} cumulative, _sum, _count."""
        out = [f"# HELP {name} {help}", f"# TYPE {name} histogram"]
        cumulative = 0
        for bound, n in zip((*self.bounds, float("inf")), self.counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else f"{bound:g}"
            out.append(f'{name}_bucket{{le="{le}"}} {cumulative}')
        out.append(f"{name}_sum {self.sum:.6f}")
        out.append(f"{name}_count {self.count}")
        return out


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items())
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metric_lines(
    name: str,
    kind: str,
    help: str,
    samples: Iterable[tuple[Mapping[str, str], float]],
) -> list[str]:
    """HELP/TYPE header and one line per labelled sample (`kind`: counter or gauge)."""
    out = [f"# HELP {name} {help}", f"# TYPE {name} {kind}"]
    out.extend(f"{name}{_labels(labels)} {_number(value)}" for labels, value in samples)
    return out


def _number(value: float) -> str:
    """Counters exactly (`:g` would print 1234567 as 1.23457e+06), other values round-trippable."""
    if isinstance(value, int) or value.is_integer():
        return str(int(value))
    return repr(float(value))


def parse_text(text: str) -> dict[str, float]:
    """Exposition text -> {'name{labels}': value}; for tests and `fleet status`."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        values[key] = float(value)
    return values


class MetricsServer:
    """GET /metrics on host:port; port 0 picks a free one (see `.port` after start)."""

    def __init__(self, render: Callable[[], str], host: str, port: int):
        self.render = render
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen; a taken port is a one-line ConfigError."""
        try:
            self._server = await asyncio.start_server(self._handle, self.host, self.port)
        except OSError as exc:
            raise ConfigError(f"metrics endpoint {self.host}:{self.port}: {exc.strerror or exc}") from None
        self.port = self._server.sockets[0].getsockname()[1]
        # The address in the message itself: Faust workers log with their own formatter, which drops extras.
        log.info("metrics endpoint listening url=http://%s:%s/metrics", self.host, self.port)

    async def stop(self) -> None:
        """Close the listener; safe twice."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(5):
                request = await reader.readline()
                while (await reader.readline()).strip():
                    pass  # headers: nothing we need
            parts = request.split()
            if len(parts) >= 2 and parts[0] == b"GET" and parts[1].split(b"?")[0] in (b"/metrics", b"/"):
                body = self.render().encode()
                head = f"HTTP/1.1 200 OK\r\nContent-Type: {CONTENT_TYPE}\r\n"
            else:
                body = b"not found: try /metrics\n"
                head = "HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\n"
            writer.write(f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass  # a scraper that hung up or stalled; the next scrape starts afresh
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def scrape(host: str, port: int, within_s: float = 5.0) -> str:
    """Fetch /metrics (for tests, benchmarks and `fleet status`)."""
    async with asyncio.timeout(within_s):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET /metrics HTTP/1.1\r\nHost: fleet\r\n\r\n")
        await writer.drain()
        raw = await reader.read()
        writer.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise ConnectionError(f"metrics {host}:{port}: {head.splitlines()[0].decode(errors='replace')}")
    return body.decode()
