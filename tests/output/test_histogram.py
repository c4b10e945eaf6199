"""pyeunomia.output.histogram: the exact lines bcc and libbpf-tools print."""

from __future__ import annotations

import pytest

from pyeunomia.output.histogram import STARS, linear_histogram, log2_histogram

# The expected log2 texts are what libbpf-tools' print_log2_hist (trace_helpers.c)
# prints for the same counts, compiled and run.
USECS = (
    "     usecs               : count    distribution\n"
    "         0 -> 1          : 3        |****                                    |\n"
    "         2 -> 3          : 30       |****************************************|\n"
)

NSECS = (
    "     nsecs               : count    distribution\n"
    "         0 -> 1          : 0        |                                        |\n"
    "         2 -> 3          : 0        |                                        |\n"
    "         4 -> 7          : 5        |********************                    |\n"
    "         8 -> 15         : 1        |****                                    |\n"
    "        16 -> 31         : 0        |                                        |\n"
    "        32 -> 63         : 10       |****************************************|\n"
    "        64 -> 127        : 7        |****************************            |\n"
)

WIDE = (
    "               ns                            : count    distribution\n"
    "                   0 -> 1                    : 1        |*****               |\n"
    "                   2 -> 3                    : 0        |                    |\n"
    "                   4 -> 7                    : 0        |                    |\n"
    "                   8 -> 15                   : 0        |                    |\n"
    "                  16 -> 31                   : 0        |                    |\n"
    "                  32 -> 63                   : 0        |                    |\n"
    "                  64 -> 127                  : 0        |                    |\n"
    "                 128 -> 255                  : 0        |                    |\n"
    "                 256 -> 511                  : 0        |                    |\n"
    "                 512 -> 1023                 : 0        |                    |\n"
    "                1024 -> 2047                 : 0        |                    |\n"
    "                2048 -> 4095                 : 0        |                    |\n"
    "                4096 -> 8191                 : 0        |                    |\n"
    "                8192 -> 16383                : 0        |                    |\n"
    "               16384 -> 32767                : 0        |                    |\n"
    "               32768 -> 65535                : 0        |                    |\n"
    "               65536 -> 131071               : 0        |                    |\n"
    "              131072 -> 262143               : 0        |                    |\n"
    "              262144 -> 524287               : 0        |                    |\n"
    "              524288 -> 1048575              : 0        |                    |\n"
    "             1048576 -> 2097151              : 0        |                    |\n"
    "             2097152 -> 4194303              : 0        |                    |\n"
    "             4194304 -> 8388607              : 0        |                    |\n"
    "             8388608 -> 16777215             : 0        |                    |\n"
    "            16777216 -> 33554431             : 0        |                    |\n"
    "            33554432 -> 67108863             : 0        |                    |\n"
    "            67108864 -> 134217727            : 0        |                    |\n"
    "           134217728 -> 268435455            : 0        |                    |\n"
    "           268435456 -> 536870911            : 0        |                    |\n"
    "           536870912 -> 1073741823           : 0        |                    |\n"
    "          1073741824 -> 2147483647           : 0        |                    |\n"
    "          2147483648 -> 4294967295           : 0        |                    |\n"
    "          4294967296 -> 8589934591           : 0        |                    |\n"
    "          8589934592 -> 17179869183          : 2        |**********          |\n"
    "         17179869184 -> 34359738367          : 4        |********************|\n"
)

LAST_SLOT_ONLY = (
    "     (unit)              : count    distribution\n"
    "         0 -> 1          : 0        |                                        |\n"
    "         2 -> 3          : 0        |                                        |\n"
    "         4 -> 7          : 0        |                                        |\n"
    "         8 -> 15         : 1        |****************************************|\n"
)

LONG_UNIT = (
    "     a very long unit name here : count    distribution\n"
    "         0 -> 1          : 1        |*****                                   |\n"
    "         2 -> 3          : 3        |*****************                       |\n"
    "         4 -> 7          : 7        |****************************************|\n"
)


def test_log2_two_slots():
    assert log2_histogram([3, 30] + [0] * 24, "usecs") == USECS


def test_log2_with_empty_slots_between():
    assert log2_histogram([0, 0, 5, 1, 0, 10, 7] + [0] * 19, "nsecs") == NSECS


def test_log2_wide_layout_past_slot_32():
    counts = [0] * 40
    counts[0], counts[33], counts[34] = 1, 2, 4
    assert log2_histogram(counts, "ns") == WIDE


def test_log2_last_slot_only_and_default_unit():
    assert log2_histogram([0, 0, 0, 1]) == LAST_SLOT_ONLY


def test_log2_unit_longer_than_its_column():
    assert log2_histogram((1, 3, 7), "a very long unit name here") == LONG_UNIT


def test_log2_slot_63_has_the_full_u64_range():
    counts = [0] * 64
    counts[63] = 9
    lines = log2_histogram(counts, "x").splitlines()
    assert len(lines) == 65
    assert lines[0] == "               x                             : count    distribution"
    assert lines[-1] == " 9223372036854775808 -> 18446744073709551615 : 9        |********************|"
    assert lines[-2] == " 4611686018427387904 -> 9223372036854775807  : 0        |                    |"


def test_log2_count_wider_than_its_column():
    text = log2_histogram([4000000000, 1], "us")
    assert text.splitlines()[1:] == [
        "         0 -> 1          : 4000000000 |****************************************|",
        "         2 -> 3          : 1        |                                        |",
    ]


@pytest.mark.parametrize("counts", [[], [0], [0] * 26, ()])
def test_log2_without_samples_prints_nothing(counts):
    assert log2_histogram(counts, "us") == ""


def test_log2_bars_round_down():
    lines = log2_histogram([1, 39, 40, 79, 80]).splitlines()
    assert [line.split("|")[1].count("*") for line in lines[1:]] == [0, 19, 20, 39, 40]
    assert all(len(line.split("|")[1]) == STARS for line in lines[1:])


def test_linear_unit_steps():
    assert linear_histogram([0, 2, 0, 4, 0, 0], unit="ms") == (
        "             ms : count    distribution\n"
        "              0 : 0        |                                        |\n"
        "              1 : 2        |********************                    |\n"
        "              2 : 0        |                                        |\n"
        "              3 : 4        |****************************************|\n"
    )


def test_linear_with_a_step_and_a_base():
    assert linear_histogram([5, 0, 1], step=10, base=100) == (
        "         (unit) : count    distribution\n"
        "     100 -> 109 : 5        |****************************************|\n"
        "     110 -> 119 : 0        |                                        |\n"
        "     120 -> 129 : 1        |********                                |\n"
    )


@pytest.mark.parametrize("counts", [[], [0, 0, 0]])
def test_linear_without_samples_prints_nothing(counts):
    assert linear_histogram(counts) == ""
