"""A minimal Faust worker with a changelog-backed Table, for the broker conformance suite.

Counts records per key from $COUNTER_IN into a Table and sends (key, count) to $COUNTER_OUT.
Run: python tests/integration/apps/table_counter.py worker --without-web -l info
"""

from __future__ import annotations

import os

import faust

from services.common.kafka import faust_broker_settings
from services.common.settings import KafkaSettings

app = faust.App(
    os.environ["COUNTER_APP_ID"],
    **faust_broker_settings(KafkaSettings.from_env()),
    store="memory://",
    web_enabled=False,
    datadir=os.environ["COUNTER_DATADIR"],
    topic_partitions=int(os.environ.get("COUNTER_PARTITIONS", "6")),
    topic_allow_declare=True,
)
source = app.topic(os.environ["COUNTER_IN"], key_type=str, value_type=str)
sink = app.topic(os.environ["COUNTER_OUT"], key_type=str, value_type=int)
counts = app.Table("counts", default=int, partitions=int(os.environ.get("COUNTER_PARTITIONS", "6")))


@app.agent(source)
async def count(stream: faust.StreamT) -> None:
    async for key, _value in stream.items():
        counts[key] += 1
        await sink.send(key=key, value=counts[key])


if __name__ == "__main__":
    app.main()
