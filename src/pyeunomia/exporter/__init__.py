"""eunomia-exporter: run eBPF programs and serve what they see as Prometheus metrics.

    config.py, document.py   the config (YAML/JSON; YAML lines kept for errors), bounded: pure
    plan.py, labels.py       the config checked against the package; label converters: pure
    decoders/                label decoders, one per module (errno, result, open_flags, ...)
    events.py, series.py     metrics from events: compiled per-run counting, bounded series
    maps.py                  metrics from BPF maps, read at scrape time
    instance.py, programs.py programs running in the kernel, each with its event thread
    collector.py, server.py  the prometheus_client collector; HTTP (/metrics, /, the API)
    cli.py                   the eunomia-exporter command
"""
