import pytest

from services.common.partitioning import murmur2, partition_for

# org.apache.kafka.common.utils.UtilsTest.testMurmur2 (Java client)
JAVA_VECTORS = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


@pytest.mark.parametrize(("key", "expected"), JAVA_VECTORS.items())
def test_murmur2_matches_the_java_client(key, expected):
    assert murmur2(key) == expected


def test_partition_is_positive_hash_modulo_count():
    for key, h in JAVA_VECTORS.items():
        assert partition_for(key, 6) == (h & 0x7FFFFFFF) % 6


def test_vins_spread_over_all_partitions():
    vins = [f"1FLEET{n:011d}".encode() for n in range(600)]
    counts = [0] * 6
    for vin in vins:
        counts[partition_for(vin, 6)] += 1
    assert min(counts) > 60  # roughly even: 100 expected per partition
