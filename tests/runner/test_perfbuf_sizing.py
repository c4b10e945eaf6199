"""How big each CPU's perf ring is when nobody asked (runner/perfbuf.ring_pages)."""

from __future__ import annotations

import pytest

from pyeunomia.runner.perfbuf import RING_BUDGET, RING_MAX, ring_pages

PAGE = 4096


@pytest.mark.parametrize(("cpus", "pages"), [
    (1, RING_MAX // PAGE),  # 8 MiB: the per-CPU cap
    (2, RING_MAX // PAGE),
    (4, RING_BUDGET // 4 // PAGE),  # 4 MiB each: the budget shared
    (6, 512),  # 16 MiB / 6 = 2.7 MiB: the power of two below, 2 MiB
    (64, 64),  # 256 KiB each, upstream's default
    (1024, 64),  # never below the package's perf_buffer_pages
])
def test_the_budget_is_shared_by_the_cpus(cpus: int, pages: int):
    assert ring_pages(64, cpus, PAGE) == pages


def test_a_package_asking_for_more_gets_it_rounded_up_to_a_power_of_two():
    assert ring_pages(3000, 2, PAGE) == 4096
    assert ring_pages(4096, 2, PAGE) == 4096


def test_every_answer_is_a_power_of_two_libbpf_accepts():
    for cpus in range(1, 300):
        for at_least in (1, 2, 3, 64, 100, 2049):
            pages = ring_pages(at_least, cpus, PAGE)
            assert pages & (pages - 1) == 0 and pages >= at_least, (cpus, at_least, pages)
            assert pages * PAGE * cpus <= max(RING_BUDGET, cpus * 2 * at_least * PAGE)
