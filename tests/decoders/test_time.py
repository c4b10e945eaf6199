"""duration and ktime."""

import time

import pytest

from pyeunomia.decoders import DECODERS
from pyeunomia.decoders.ktime import wall_text


def test_duration_units_and_digits():
    kind = DECODERS["duration"]
    assert kind.make({})(1_234_567) == "1.235"  # ns shown in ms
    assert kind.make({"unit": "us", "show": "s", "digits": 6})(2_500_000) == "2.500000"
    assert kind.make({"unit": "ms", "show": "us", "digits": 0})(3) == "3000"
    with pytest.raises(ValueError, match="unit: expected one of ns, us, ms, s"):
        kind.make({"unit": "h"})
    with pytest.raises(ValueError, match="digits"):
        kind.make({"digits": 12})


def test_ktime_is_wall_time_of_a_boot_stamp():
    decode = DECODERS["ktime"].make({})
    boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    now = time.time_ns()
    shown = decode(boot)
    assert shown == wall_text(now) or abs(int(shown[-6:]) - (now // 1000) % 1_000_000) < 5000
    mono = DECODERS["ktime"].make({"clock": "monotonic"})
    assert mono(time.clock_gettime_ns(time.CLOCK_MONOTONIC) - 3_000_000_000)[:8] == \
        time.strftime("%H:%M:%S", time.localtime(time.time() - 3))
    assert wall_text(0)[-7:] == ".000000"
    with pytest.raises(ValueError, match="clock"):
        DECODERS["ktime"].make({"clock": "tai"})
