import signal

from pyeunomia.decoders import DECODERS


def test_signal_names_realtime_and_unknown():
    decode = DECODERS["signal"].make({})
    assert [decode(n) for n in (9, 15, 10, 2)] == ["SIGKILL", "SIGTERM", "SIGUSR1", "SIGINT"]
    rtmin = int(signal.SIGRTMIN)
    assert [decode(rtmin), decode(rtmin + 3)] == ["SIGRTMIN", "SIGRTMIN+3"]
    assert [decode(0), decode(200)] == ["0", "200"]
