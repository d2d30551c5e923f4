"""The Java client's default partitioner: murmur2 of the key bytes, positive, modulo partitions.

Kafka's Java producer, Kafka Streams, Kafka Connect, librdkafka's `murmur2_random` and
aiokafka's DefaultPartitioner all place a keyed record with this function, so a VIN lands on
the same partition whichever client produced it — which is what makes the five telemetry
topics co-partitioned for the hot path.
"""

from __future__ import annotations

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    end = length - length % 4
    for i in range(0, end, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = (h * _M) & _MASK
        h ^= k
    tail = length % 4
    if tail == 3:
        h ^= data[end + 2] << 16
    if tail >= 2:
        h ^= data[end + 1] << 8
    if tail >= 1:
        h ^= data[end]
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_for(key: bytes, partitions: int) -> int:
    """The partition the Java default partitioner picks for `key`."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions
