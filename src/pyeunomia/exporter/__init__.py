"""eunomia-exporter: run eBPF programs and serve what they see as Prometheus metrics.

    config.py, document.py      the config (YAML/JSON; YAML lines kept for errors), bounded: pure
    webconfig.py                TLS and basic auth (exporter-toolkit format)
    plan.py, labels.py          the config checked against the package; labels through decoders/: pure
    event_metrics.py, series.py metrics from events: compiled per-run counting, bounded series
    map_metrics.py              metrics from BPF maps, read at scrape time
    instance.py, programs.py    programs running in the kernel (through runner/), each with its event thread
    priority.py                 scrapes first: event threads and the collector wait while one renders
    collector.py, exposition.py the prometheus_client collector; cached exposition lines
    httpwire.py                 request heads parsed strictly, response heads written: pure
    httpserver.py, httplanes.py one I/O thread for every connection, worker lanes for the answers
    ratelog.py                  a rate-limited log
    server.py                   the pages and the API (/, /metrics, /list, /start, /stop)

The command is cli/exporter.py.
"""
