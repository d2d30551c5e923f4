"""Prometheus exposition: histogram, line format, the /metrics endpoint and its scraper."""

from __future__ import annotations

import asyncio

import pytest

from services.common.errors import ConfigError
from services.common.metrics import CONTENT_TYPE, Histogram, MetricsServer, metric_lines, parse_text, scrape

HOST = "127.0.0.1"


def filled(*values: float) -> Histogram:
    histogram = Histogram(buckets=(5.0, 1.0, 2.0))  # given unsorted on purpose
    for value in values:
        histogram.observe(value)
    return histogram


def test_histogram_buckets_are_cumulative_in_the_exposition():
    lines = filled(0.5, 1.0, 1.5, 3.0, 10.0).lines("lat_seconds", "latency")
    assert lines == [
        "# HELP lat_seconds latency",
        "# TYPE lat_seconds histogram",
        'lat_seconds_bucket{le="1"} 2',  # le is inclusive: 1.0 counts here
        'lat_seconds_bucket{le="2"} 3',
        'lat_seconds_bucket{le="5"} 4',
        'lat_seconds_bucket{le="+Inf"} 5',
        "lat_seconds_sum 16.000000",
        "lat_seconds_count 5",
    ]


def test_histogram_quantile_is_the_upper_bound_of_its_bucket():
    histogram = filled(0.5, 1.0, 1.5, 3.0, 10.0)
    assert histogram.quantile(0.4) == 1.0  # 2 of 5 values are <= 1
    assert histogram.quantile(0.5) == 2.0
    assert histogram.quantile(0.8) == 5.0
    assert histogram.quantile(0.99) == float("inf")  # 10.0 is past the last bound
    assert Histogram().quantile(0.5) == 0.0


def test_metric_lines_have_help_type_and_escaped_labels():
    lines = metric_lines(
        "fleet_x_total", "counter", "things", [({}, 3), ({"reason": 'a"b\\c\nd', "k": "v"}, 1.5)]
    )
    assert lines == [
        "# HELP fleet_x_total things",
        "# TYPE fleet_x_total counter",
        "fleet_x_total 3",
        'fleet_x_total{reason="a\\"b\\\\c\\nd",k="v"} 1.5',
    ]
    assert all("\n" not in line for line in lines)


def test_large_counters_are_rendered_exactly():
    (line,) = metric_lines("fleet_x_total", "counter", "things", [({}, 1_234_567)])[2:]
    assert line == "fleet_x_total 1234567"


def test_parse_text_reads_samples_and_skips_comments():
    text = "\n".join(
        [
            *metric_lines("a_total", "counter", "a", [({"reason": "x y"}, 2)]),
            *filled(0.5).lines("h", "h"),
            "",
        ]
    )
    values = parse_text(text)
    assert values['a_total{reason="x y"}'] == 2.0
    assert values['h_bucket{le="+Inf"}'] == 1.0
    assert values["h_sum"] == 0.5
    assert not [k for k in values if k.startswith("#")]


async def request(port: int, raw: bytes) -> tuple[bytes, bytes]:
    reader, writer = await asyncio.open_connection(HOST, port)
    writer.write(raw)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = response.partition(b"\r\n\r\n")
    return head, body


@pytest.fixture
async def server():
    scrapes = []

    def render() -> str:
        scrapes.append(1)
        return f"# TYPE up gauge\nup 1\nscrapes_total {len(scrapes)}\n"

    served = MetricsServer(render, HOST, 0)
    await served.start()
    yield served
    await served.stop()


async def test_server_picks_a_free_port_and_renders_on_every_scrape(server):
    assert server.port > 0
    assert parse_text(await scrape(HOST, server.port)) == {"up": 1.0, "scrapes_total": 1.0}
    assert parse_text(await scrape(HOST, server.port))["scrapes_total"] == 2.0


@pytest.mark.parametrize("path", [b"/metrics", b"/", b"/metrics?name=up"])
async def test_get_metrics_is_text_exposition(server, path):
    head, body = await request(server.port, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert f"Content-Type: {CONTENT_TYPE}" in lines
    assert f"Content-Length: {len(body)}" in lines
    assert body.startswith(b"# TYPE up gauge\nup 1\n")


@pytest.mark.parametrize("line", [b"GET /other HTTP/1.1", b"POST /metrics HTTP/1.1", b"GARBAGE"])
async def test_anything_else_is_404(server, line):
    head, body = await request(server.port, line + b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404 Not Found")
    assert b"/metrics" in body


async def test_scrape_raises_on_a_non_200_answer():
    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    listener = await asyncio.start_server(refuse, HOST, 0)
    try:
        port = listener.sockets[0].getsockname()[1]
        with pytest.raises(ConnectionError, match="503 Service Unavailable"):
            await scrape(HOST, port)
    finally:
        listener.close()
        await listener.wait_closed()


async def test_a_taken_port_is_a_one_line_config_error(server):
    second = MetricsServer(lambda: "", HOST, server.port)
    with pytest.raises(ConfigError) as info:
        await second.start()
    message = str(info.value)
    assert message.startswith(f"metrics endpoint {HOST}:{server.port}: ")
    assert "\n" not in message
    await second.stop()  # never started: nothing to do


async def test_stop_is_safe_twice_and_closes_the_port():
    served = MetricsServer(lambda: "", HOST, 0)
    await served.start()
    await served.stop()
    await served.stop()
    with pytest.raises(OSError):
        await scrape(HOST, served.port, within_s=1)
