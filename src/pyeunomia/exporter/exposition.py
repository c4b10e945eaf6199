"""/metrics bodies made by prometheus_client's own encoders, with the start
of each series' line kept from one scrape to the next.

The library formats every sample afresh at every scrape: it sorts the labels,
checks and escapes their names and values, formats the value. At 10,000
series that was 50 of a scrape's 55 ms. Yet a series' label set never changes
once made; only its value does. So, for the counter and gauge families made
from our series (SeriesFamily), the text of each line before the value is
taken from the library's output the first time the series shows up and
reused afterwards: a later line is that text, the value as the library
writes it (floatToGoString) and a newline. Every other family goes through
the library whole, one family at a time. This module escapes nothing itself,
and when the library's output is not shaped as expected it falls back to the
library alone. tests/exporter/test_exposition.py checks the bytes are the
library's.

A counter served without `_total` (the config's total_suffix: false, as
upstream's eunomia-exporter names its counters) is a "bare" SeriesFamily: in
the text format its header is the library's header of a gauge of that name
with the type word made `counter` (the library would name it NAME_total);
in OpenMetrics, whose counters must end in `_total`, it is an `unknown`
family, the type the format has for such samples.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

Rows = list[tuple[tuple[str, ...], Any]]  # (label values, value), one per series
Encode = Callable[[Any], bytes]  # a library encoder: registry -> body

VALUES_MAX = 1 << 16  # value texts kept; past this the cache starts over
SPARE_LINES = 1024  # line starts kept for series gone since, before pruning
VARIANTS_MAX = 4  # encoders kept: the Accept header (hence the variant) is the client's choice


class SeriesFamily(Metric):
    """A counter or gauge family (as CounterMetricFamily or GaugeMetricFamily
    would make it) whose samples are `rows`, named `sample_name`, with the
    labels `label_names`, followed by `extra` (the overflow sample). Sample
    objects are made only if something reads `samples`: the cached encoder
    reads the rows."""

    def __init__(self, name: str, documentation: str, typ: str, label_names: tuple[str, ...], rows: Rows,
                 bare: bool = False, const_names: tuple[str, ...] = (), const_values: tuple[str, ...] = ()):
        self.bare = bare and typ == "counter"  # served without `_total`: see the module's docstring
        if typ == "counter" and name.endswith("_total") and not self.bare:
            name = name[:-6]  # as CounterMetricFamily does
        super().__init__(name, documentation, typ)
        self._samples: list[Sample] | None = None  # Metric.__init__ assigned [] through the setter
        self.sample_name = name + "_total" if typ == "counter" and not self.bare else name
        self.label_names = const_names + label_names  # the const labels (a fleet's node) first
        self.const_values = const_values
        self.rows = rows  # label values without the const ones
        self.extra: list[Sample] = []

    def build(self, rows: Iterable[tuple[tuple[str, ...], Any]]) -> list[Sample]:
        """Samples of these rows (the const label values put in front)."""
        const = self.const_values
        if const:
            rows = [(const + labels, value) for labels, value in rows]
        return sample_builder(self.label_names)(self.sample_name, rows)

    @property
    def samples(self) -> list[Sample]:
        if self._samples is None:
            self._samples = self.build(self.rows) + self.extra
        return self._samples

    @samples.setter
    def samples(self, value: list[Sample]) -> None:
        self._samples = value

    @property
    def as_rows(self) -> bool:
        """Whether the rows and `extra` are still the samples: nothing has
        made (and perhaps changed) the sample list."""
        return self._samples is None


SampleBuilder = Callable[[str, Iterable[tuple[tuple[str, ...], Any]]], list[Sample]]
_builders: dict[tuple[str, ...], SampleBuilder] = {}


def sample_builder(names: tuple[str, ...]) -> SampleBuilder:
    """A function making the samples of one family: the labels dict as a
    literal and the Sample tuple made directly, with its optional fields at
    their defaults (8 ms down to 3 ms for 10,000 series). Falls back to
    calling Sample when its fields are not the ones this was written for."""
    build = _builders.get(names)
    if build is not None:
        return build
    fields = Sample._fields
    defaults = Sample._field_defaults
    if fields[:3] != ("name", "labels", "value") or any(f not in defaults for f in fields[3:]):
        def build(name: str, items: Iterable[tuple[tuple[str, ...], Any]]) -> list[Sample]:
            return [Sample(name, dict(zip(names, labels, strict=True)), value) for labels, value in items]
    else:
        env: dict[str, Any] = {"NEW": tuple.__new__, "SAMPLE": Sample}
        tail = ""
        for i, f in enumerate(fields[3:]):
            env[f"D{i}"] = defaults[f]
            tail += f", D{i}"
        labels = "{" + ", ".join(f"{n!r}: l[{i}]" for i, n in enumerate(names)) + "}"
        source = f"def build(name, items):\n    return [NEW(SAMPLE, (name, {labels}, v{tail})) for l, v in items]\n"
        exec(compile(source, "<pyeunomia samples>", "exec"), env)  # noqa: S102 - names are quoted with repr
        build = env["build"]
    _builders[names] = build
    return build


class _Families:
    """A registry of given families, for the library's encoders."""

    def __init__(self, families: list[Metric]):
        self.families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


class _Unexpected(Exception):
    """The library's output is not shaped as this module expects."""


class CachedEncoder:
    """One library encoder (a format and escaping) with the line starts of
    the series it has written. Scrapes through one encoder take turns: the
    caches are shared, and Python runs one of them at a time anyway."""

    def __init__(self, encode: Encode):
        self._encode = encode
        self._lock = threading.Lock()
        self._trailer = encode(_Families([]))  # b"# EOF\n" for OpenMetrics, nothing for the text format
        self._zero = str(floatToGoString(0))  # type: ignore[no-untyped-call]
        self._headers: dict[tuple[str, str, str, str], bytes] = {}
        self._lines: dict[tuple[Any, ...], dict[tuple[str, ...], str]] = {}  # family -> labels -> "name{...} "
        self._values: dict[float, str] = {}  # value -> its text and a newline
        self._library_only = False
        self._openmetrics = bool(self._trailer)

    @property
    def lines_kept(self) -> int:
        return sum(len(lines) for lines in self._lines.values())

    def __call__(self, registry: Any) -> bytes:
        with self._lock:
            if self._library_only:
                return self._encode(_Families([_plain(m) for m in registry.collect()]))
            try:
                return self._render(registry)
            except _Unexpected:
                # for good: the library's output keeps its shape, and trying again would cost double
                self._library_only = True
                self._headers.clear()
                self._lines.clear()
                return self._encode(_Families([_plain(m) for m in registry.collect()]))

    def _render(self, registry: Any) -> bytes:
        out: list[bytes] = []
        used: set[tuple[Any, ...]] = set()
        for metric in registry.collect():
            if isinstance(metric, SeriesFamily) and metric.as_rows:
                key = (metric.name, metric.type, metric.sample_name, metric.label_names, metric.const_values)
                used.add(key)
                out.append(self._series_family(metric, key))
            else:
                out.append(self._one(_plain(metric)))
        out.append(self._trailer)
        for key in [k for k in self._lines if k not in used]:
            del self._lines[key]  # a stopped program's families
        if len(self._headers) > 2 * len(used) + 16:
            self._headers.clear()
        return b"".join(out)

    def _one(self, metric: Metric) -> bytes:
        body = self._encode(_Families([metric]))
        if not body.endswith(self._trailer):
            raise _Unexpected
        return body[: len(body) - len(self._trailer)]

    def _type(self, metric: Metric) -> str:
        """The type the library is given: a bare counter's is a gauge's
        (text; its header is then patched) or unknown (OpenMetrics)."""
        if isinstance(metric, SeriesFamily) and metric.bare:
            return "unknown" if self._openmetrics else "gauge"
        return metric.type

    def _header(self, metric: Metric) -> bytes:
        key = (metric.name, metric.documentation, self._type(metric), metric.unit)
        header = self._headers.get(key)
        if header is None:
            header = self._headers[key] = self._one(Metric(*key))
        return header

    def _series_family(self, metric: SeriesFamily, key: tuple[Any, ...]) -> bytes:
        header = self._header(metric)
        shown = header
        if metric.bare and not self._openmetrics:
            if not header.endswith(b" gauge\n"):
                raise _Unexpected
            shown = header[:-len(b"gauge\n")] + b"counter\n"
        lines = self._lines.get(key)
        if lines is None:
            lines = self._lines[key] = {}
        rows = metric.rows
        value_get = self._values.get
        value_text = self._value_text
        try:
            text = "".join([lines[labels] + (value_get(value) or value_text(value)) for labels, value in rows])
        except KeyError:  # new series: learn them all, then again
            self._learn(metric, header, [labels for labels, _ in rows if labels not in lines], lines)
            text = "".join([lines[labels] + (value_get(value) or value_text(value)) for labels, value in rows])
        if len(lines) > 2 * len(rows) + SPARE_LINES:
            self._lines[key] = {labels: lines[labels] for labels, _ in rows}
        body = shown + text.encode()
        if metric.extra:
            extra = Metric(metric.name, metric.documentation, self._type(metric), metric.unit)
            extra.samples = list(metric.extra)
            body += self._samples_only(extra, header)
        return body

    def _learn(self, metric: SeriesFamily, header: bytes, missing: list[tuple[str, ...]],
               lines: dict[tuple[str, ...], str]) -> None:
        """The line starts of new series, from the library's lines for them
        with the value 0."""
        probe = Metric(metric.name, metric.documentation, self._type(metric), metric.unit)
        probe.samples = metric.build([(labels, 0) for labels in missing])
        found = self._samples_only(probe, header).decode().split("\n")
        zero = self._zero
        if len(found) != len(missing) + 1 or found[-1]:
            raise _Unexpected  # not one line per sample
        for labels, line in zip(missing, found, strict=False):
            if not line.endswith(" " + zero):
                raise _Unexpected
            lines[labels] = line[: len(line) - len(zero)]

    def _samples_only(self, metric: Metric, header: bytes) -> bytes:
        body = self._one(metric)
        if not body.startswith(header):
            raise _Unexpected
        return body[len(header):]

    def _value_text(self, value: Any) -> str:
        """The value's text as the library writes it, and a newline. Only
        nonzero ints are kept: a float equal to a kept int finds that int's
        text, which is its own too, except -0.0 for 0."""
        text = str(floatToGoString(value)) + "\n"  # type: ignore[no-untyped-call]
        if type(value) is int and value:
            if len(self._values) >= VALUES_MAX:
                self._values.clear()
            self._values[value] = text
        return text


def _plain(metric: Metric) -> Metric:
    """A family the library alone encodes right: a bare counter becomes an
    untyped (unknown) family of its samples, which are named as it is."""
    if isinstance(metric, SeriesFamily) and metric.bare:
        plain = Metric(metric.name, metric.documentation, "unknown", metric.unit)
        plain.samples = metric.samples
        return plain
    return metric


class Encoders:
    """A cached encoder for each library encoder in use (format, version and
    escaping), the latest few kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_variant: dict[tuple[Any, ...], CachedEncoder] = {}

    def get(self, library: Encode) -> CachedEncoder:
        keywords = getattr(library, "keywords", {})  # choose_encoder's encoders are partials
        variant = (getattr(library, "func", library), getattr(library, "args", ()), tuple(sorted(keywords.items())))
        with self._lock:
            encoder = self._by_variant.pop(variant, None)
            if encoder is None:
                encoder = CachedEncoder(library)
                while len(self._by_variant) >= VARIANTS_MAX:
                    del self._by_variant[next(iter(self._by_variant))]
            self._by_variant[variant] = encoder  # last: the most recently used
            return encoder
