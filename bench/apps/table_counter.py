"""A minimal Faust worker with a changelog-backed Table (broker conformance, `fleet bench stack`).

Counts records per key from $COUNTER_IN into a Table and sends (key, count) to $COUNTER_OUT.
$COUNTER_GROUP_SETTINGS=faust-defaults runs it with Faust's own group timings (the peer in
`fleet bench stack`); otherwise it uses ours (services.common.kafka.FAUST_GROUP_SETTINGS).
Run: python bench/apps/table_counter.py worker --without-web -l info
"""

from __future__ import annotations

import os

import faust

from services.common.kafka import FAUST_GROUP_SETTINGS, faust_broker_settings
from services.common.settings import KafkaSettings

broker = faust_broker_settings(KafkaSettings.from_env())
if os.environ.get("COUNTER_GROUP_SETTINGS") == "faust-defaults":
    broker = {k: v for k, v in broker.items() if k not in FAUST_GROUP_SETTINGS}

app = faust.App(
    os.environ["COUNTER_APP_ID"],
    **broker,
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
