"""The reference murmur2 must itself match Kafka's Java client (vectors from Kafka's UtilsTest)."""

import pytest

from eventflow_assets_tests.helpers import java_murmur2


@pytest.mark.parametrize("data, expected", [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
])
def test_java_murmur2_vectors(data, expected):
    assert java_murmur2(data) == expected
