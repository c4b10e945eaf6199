"""The scrape gate: event threads wait while a scrape renders, but only while
their ring has room; garbage collection is off during a scrape and back on
after it, also when scrapes overlap."""

from __future__ import annotations

import gc
import threading
import time

from pyeunomia.exporter import priority
from pyeunomia.exporter.priority import ScrapeGate


def test_no_scrape_no_wait():
    gate = ScrapeGate()
    start = time.monotonic()
    gate.hold(lambda: 0.0)
    assert time.monotonic() - start < 0.05 and gate.held_s < 0.05


def test_an_event_thread_waits_for_the_scrape():
    gate = ScrapeGate()
    done_at: list[float] = []

    def events() -> None:
        gate.hold(lambda: 0.1)
        done_at.append(time.monotonic())

    with gate.scrape():
        assert gate.scraping
        thread = threading.Thread(target=events)
        thread.start()
        time.sleep(0.2)
        assert not done_at  # still waiting: the ring is 10% full
        ended = time.monotonic()
    thread.join(5)
    assert done_at and done_at[0] >= ended and gate.held_s >= 0.15
    assert not gate.scraping


def test_a_filling_ring_ends_the_wait():
    gate = ScrapeGate()
    fill = [0.0]
    with gate.scrape():
        thread = threading.Thread(target=gate.hold, args=(lambda: fill[0],))
        thread.start()
        time.sleep(0.05)
        assert thread.is_alive()
        fill[0] = priority.HOLD_UNTIL  # half full: read now, whatever the scrape
        thread.join(1)
        assert not thread.is_alive()


def test_the_wait_is_bounded(monkeypatch):
    monkeypatch.setattr(priority, "HOLD_MAX_S", 0.1)
    gate = ScrapeGate()
    with gate.scrape():
        start = time.monotonic()
        gate.hold(lambda: 0.0)
        assert 0.09 <= time.monotonic() - start < 1.0


def test_gc_is_off_during_scrapes_and_back_after(monkeypatch):
    assert gc.isenabled()
    gate = ScrapeGate()
    with gate.scrape():
        assert not gc.isenabled()
        with gate.scrape():  # overlapping scrapes
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
    monkeypatch.setattr(priority, "GC_OFF_MAX_S", 0.0)
    with gate.scrape():
        with gate.scrape():  # scrapes overlapping for too long: collection comes back
            assert gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gate.scrape():
            pass
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
