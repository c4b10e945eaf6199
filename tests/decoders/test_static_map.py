import pytest

from pyeunomia.decoders import DECODERS


def test_static_map_with_and_without_default():
    kind = DECODERS["static_map"]
    decode = kind.make({"map": {6: "tcp", 17: "udp"}})
    assert [decode(6), decode(17), decode(1)] == ["tcp", "udp", 1]
    other = kind.make({"map": {"openat": "at"}, "default": "other"})
    assert [other("openat"), other("open")] == ["at", "other"]
    with pytest.raises(ValueError, match="map: expected a mapping"):
        kind.make({})
    with pytest.raises(ValueError, match="default"):
        kind.make({"map": {1: "a"}, "default": 3})
