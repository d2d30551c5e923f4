"""The QuixStreams peer of `fleet bench cold`: the five telemetry topics into Parquet files.

Pipeline: one StreamingDataFrame per telemetry topic, JSON values decoded by QuixStreams' default
deserializer (orjson), each sunk into its own `LocalFileSink(format=ParquetFormat(...))`
(quixstreams.sinks.community.file, 3.28.1: the sink is `LocalFileSink`, there is no separate
`LocalDestination` in this version). The sink batches records per topic partition and writes
one file per partition at every checkpoint: `<dir>/<topic>/<partition>/<first offset:019d>.parquet`,
columns `_timestamp`, `_key` and the frame's keys (types inferred by Arrow from the batch).

Controls (matched with `fleet cold`, set by the bench): at-least-once (a checkpoint flushes
the sinks, then commits offsets; a failed flush aborts it), `--commit-interval` seconds
between checkpoints, Parquet compression `--compression`, consumer group timings as ours.

On Tansu and this QuixStreams version:
- Consumer session 6 s: Tansu holds a JoinGroup for about half the session timeout
  (librdkafka's default 45 s would make the start wait ~22 s).
- Producer `batch.num.messages=1`, as in bench/apps/quix_rules.py (true high watermarks on
  Tansu); this app produces nothing (no state, no output topic), it is set for uniformity.
- The input topics carry `retention.ms` (bench/hot_peer.py creates them so): QuixStreams reads
  it with DescribeConfigs for every topic it registers.
- The sink refuses a directory with any character outside `[a-zA-Z0-9 ._/]` (a `-`, as in
  tempfile's `/tmp/fleet-bench-...`), so the app changes into the output folder and gives
  the sink a relative path.
- `LocalFileSink` writes each file in place (`open(path, "wb")`), with no temporary name: a
  reader may see a file whose footer is not written yet (the bench retries such a file).

    FLEET_KAFKA_BOOTSTRAP=127.0.0.1:9092 python -m bench.apps.quix_filesink <topic_prefix> <group> \
        <out_dir> [--count 500000] [--commit-interval 1.0] [--compression snappy] [--idle 30]

Exits after `--count` consumed messages (stopping commits the last checkpoint, so every file
is written), `--idle` seconds without one, or SIGTERM, and prints {"events", "seconds",
"events_per_s"} (JSON): the time between the first and the last processed message.
`fleet bench cold` passes no `--count` (ours does not know N either): it counts the rows in
the files and stops the app once they hold N.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from quixstreams import Application
from quixstreams.sinks.community.file.formats import ParquetFormat
from quixstreams.sinks.community.file.local import LocalFileSink

from bench.apps.quix_rules import SUBSYSTEMS, Meter, metered_application
from services.common.settings import KafkaSettings


def build_app(
    bootstrap: str,
    prefix: str,
    group: str,
    meter: Meter,
    *,
    commit_interval: float = 1.0,
    compression: Any = "snappy",
) -> Application:
    """The Application: five input dataframes, each into a Parquet sink under the current folder."""
    app = metered_application(bootstrap, group, meter, commit_interval=commit_interval)
    for sub in SUBSYSTEMS:
        topic = app.topic(prefix + sub, key_deserializer="bytes", value_deserializer="json")
        # {"vin": ..., "ts": ..., "seq": ..., <signal>: ...} -> one Parquet row
        sink = LocalFileSink(directory="", format=ParquetFormat(compression=compression))
        app.dataframe(topic).sink(sink)
    return app


def main(argv: list[str] | None = None) -> None:
    """Run until --count messages or --idle seconds without one; print the figure as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("prefix", help="input topics = prefix + subsystem")
    parser.add_argument("group", help="consumer group")
    parser.add_argument("out_dir", help="where the Parquet files go (<topic>/<partition>/<offset>.parquet)")
    parser.add_argument("--count", type=int, default=0, help="stop after this many consumed messages")
    parser.add_argument("--idle", type=float, default=30.0, help="stop after this long without a message (s)")
    parser.add_argument("--commit-interval", type=float, default=1.0, help="checkpoint interval (s)")
    parser.add_argument(
        "--compression",
        default="snappy",
        choices=("none", "snappy", "gzip", "brotli", "lz4", "zstd"),
        help="Parquet compression",
    )
    args = parser.parse_args(argv)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    os.chdir(out)  # the sink accepts only [a-zA-Z0-9 ._/] in its directory (module docstring)
    meter = Meter(args.count)
    app = build_app(
        KafkaSettings.from_env().bootstrap,
        args.prefix,
        args.group,
        meter,
        commit_interval=args.commit_interval,
        compression=args.compression,
    )
    app.run(timeout=args.idle, collect=False)
    figure = meter.report()
    del figure["alerts"]
    print(json.dumps(figure), flush=True)


if __name__ == "__main__":
    main()
