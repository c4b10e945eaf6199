"""The exporter's configuration: upstream eunomia-exporter's YAML (or JSON),
plus options for the programs' globals, histograms, gauges, label decoders,
series limits and metrics read from BPF maps.

    const_labels: {node: node-1}        # added to every series served (Prometheus'
                                        #   const labels), the exporter's own too
    total_suffix: true                  # false: counters served as named, without
                                        #   `_total` (upstream's names); also per counter
    programs:
      - name: opensnoop                 # the built-in package of that name, unless
        compiled_ebpf_filename:         # a package path (relative to this file) or
        ebpf_data:                      # the package's JSON text inline is given
        options: {targ_failed: true}    # the program's globals
        metrics:
          counters:
            - name: eunomia_file_open_counter
              description: test
              labels:
                - name: pid
                - name: filename
                  from: fname
                  decoders: [errno]     # or {name: static_map, map: {...}}
              max_series: 10000         # distinct label sets kept; the rest overflow
              expire_after: 5m          # drop a series not seen for this long
              map: opens                # read a BPF hash map at scrape time instead
          histograms: [{name, value: field, buckets: {type: exp2, min: 0, max: 20}}]
          gauges: [{name, value: field}]        # counters and gauges: multiplier: 1e-9 (ns -> s)

Pure: parses and checks the structure; whether fields, globals and maps exist
is checked against the package by `plan`. Every error names the file, the
line and the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from ..decoders import DECODERS
from ..files import FileTooLarge, NotRegularFile, read_regular
from ..format.units import size_text
from .buckets import BucketsConfig
from .buckets import parse_buckets as _buckets
from .constlabels import LABEL_NAME, RESERVED_LABELS, check_const_labels, parse_const_labels
from .document import Node, config_error, parse_text, shown
from .values import Located
from .values import duration as _duration
from .values import flag as _flag
from .values import mapping as _mapping
from .values import number as _number
from .values import text as _text

# A config is KBs, but `ebpf_data` may carry a whole package inline: the
# shipped and upstream packages are 26-39 KB (about 0.4 bytes per byte of
# their BPF object). An API request is one program: 4 MiB holds the package of
# a 9 MB object, a hundred times the largest here. A config file may inline
# several: 16 MiB, as much as a package download (source.MAX_DOWNLOAD).
# The parse is bounded by values (document.MAX_NODES) as well as by bytes.
MAX_REQUEST_BODY = 4 << 20
MAX_CONFIG_FILE = 16 << 20
DEFAULT_MAX_SERIES = 10_000
SELF_PREFIX = "eunomia_exporter_"
METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
KINDS = {"counters": "counter", "histograms": "histogram", "gauges": "gauge"}


@dataclass(frozen=True)
class DecoderConfig:
    name: str
    params: dict[str, Any]
    at: Located


@dataclass(frozen=True)
class LabelConfig:
    name: str
    source: str  # the field (or map key member) the value comes from: `from`, else `name`
    decoders: tuple[DecoderConfig, ...]
    at: Located


@dataclass(frozen=True)
class MetricConfig:
    kind: str  # counter, histogram, gauge
    name: str
    description: str
    labels: tuple[LabelConfig, ...]
    map: str | None  # read from this BPF map at scrape time; None: from events
    value: str | None  # the field (or map value member) with the value
    buckets: BucketsConfig | None
    max_series: int
    expire_after: float | None  # seconds
    at: Located
    total_suffix: bool = True  # a counter's samples end in `_total`; False: served exactly as named
    multiplier: float = 1.0  # a counter's or gauge's exported value is value * multiplier (ns -> s: 1e-9)
    from_global: bool = False  # `map` names a global variable of .data/.bss (`global:`), read like a map

    @property
    def exposed_name(self) -> str:
        """The family name prometheus_client uses: a counter loses `_total`
        (unless it is served without the suffix, under its own name)."""
        return self.name.removesuffix("_total") if self.kind == "counter" and self.total_suffix else self.name

    @property
    def bare(self) -> bool:
        """A counter served without the `_total` suffix (total_suffix: false)."""
        return self.kind == "counter" and not self.total_suffix


@dataclass(frozen=True)
class ProgramConfig:
    name: str
    compiled_ebpf_filename: str | None
    ebpf_data: str | None
    options: dict[str, tuple[Any, Located]]
    metrics: tuple[MetricConfig, ...]
    at: Located
    base_dir: str = "."  # relative package paths are resolved here

    @property
    def needs_events(self) -> bool:
        return any(m.map is None for m in self.metrics)


@dataclass(frozen=True)
class ExporterConfig:
    file: str
    programs: tuple[ProgramConfig, ...] = field(default_factory=tuple)
    const_labels: tuple[tuple[str, str], ...] = ()  # (name, value) added to every series served
    total_suffix: bool = True  # the default for counters that do not say


def load_config(path: str) -> ExporterConfig:
    """Read and check the config file at `path` (JSON when it ends in .json):
    a regular file (a FIFO is refused, not waited on) of MAX_CONFIG_FILE bytes or fewer."""
    try:
        data = read_regular(path, MAX_CONFIG_FILE)
    except FileNotFoundError:
        raise config_error("no such file: pass the config with -c FILE", file=path) from None
    except IsADirectoryError:
        raise config_error("is a directory: pass the config file with -c FILE", file=path) from None
    except NotRegularFile as e:
        raise config_error(f"not a regular file ({e.kind}): pass the config file with -c FILE", file=path) from None
    except FileTooLarge:
        raise config_error(f"larger than {size_text(MAX_CONFIG_FILE)}: a config is KBs, even with packages inline "
                           "in ebpf_data: check the file, or name packages with compiled_ebpf_filename",
                           file=path) from None
    except OSError as e:
        raise config_error(f"cannot read: {e.strerror}", file=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise config_error(f"not UTF-8 text (byte {e.start}): save the file as UTF-8", file=path) from None
    return parse_config(text, path, as_json=path.lower().endswith(".json"))


def parse_config(text: str, file: str, as_json: bool = False) -> ExporterConfig:
    root = parse_text(text, file, as_json)
    top = _mapping(root, "the config", ("programs", "const_labels", "total_suffix"))
    const = parse_const_labels(top.get("const_labels"))
    total_suffix = _flag(top["total_suffix"]) if "total_suffix" in top else True
    programs_node = top.get("programs")
    if programs_node is None:
        raise root.error("missing 'programs': list the programs to run (see the tutorial's config)", "programs")
    if not isinstance(programs_node.value, list):
        raise programs_node.error("expected a list of programs")
    base_dir = os.path.dirname(os.path.abspath(file)) if not file.startswith("<") else os.getcwd()
    programs = tuple(parse_program(p, base_dir, total_suffix) for p in programs_node.value)
    check_unique_names(programs)
    check_const_labels(programs, const)
    return ExporterConfig(file, programs, const, total_suffix)


def program_from_request(body: bytes, base_dir: str, total_suffix: bool = True) -> ProgramConfig:
    """The body of the API's POST /start: one entry of `programs`, as JSON.

    Bounded in time and memory: over MAX_REQUEST_BODY bytes it is refused
    unread, and over document.MAX_NODES values before json.loads. A 4 MiB body
    of 1.4 M empty lists took 54 s and 1.09 GiB before that (82 s and 1.34 GiB
    as numbers); it is now refused in 0.01 s and 4 MiB, and the costliest body
    within both bounds (200,000 values and a 3 MiB string) parses in 0.36 s
    and 44 MiB (see tests/property/test_resources.py).
    """
    if len(body) > MAX_REQUEST_BODY:
        raise config_error(f"the body is over {size_text(MAX_REQUEST_BODY)}: name a large package with "
                           "compiled_ebpf_filename instead of sending it in ebpf_data", file="<request>")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise config_error("the body is not UTF-8 JSON", file="<request>") from None
    return parse_program(parse_text(text, "<request>", as_json=True), base_dir, total_suffix)


def parse_program(node: Node, base_dir: str = ".", total_suffix: bool = True) -> ProgramConfig:
    """One entry of `programs` (also the body of the API's POST /start);
    `total_suffix`: the config's default for its counters."""
    keys = _mapping(node, "a program", ("name", "metrics", "compiled_ebpf_filename", "ebpf_data", "options"))
    name = _text(node, keys, "name", required=True)
    assert name is not None
    if not name.strip():
        raise keys["name"].error("expected the program's name, e.g. opensnoop")
    filename = _text(node, keys, "compiled_ebpf_filename") or None
    data = _text(node, keys, "ebpf_data") or None
    if filename and data:
        raise keys["ebpf_data"].error("give either ebpf_data or compiled_ebpf_filename, not both")
    options: dict[str, tuple[Any, Located]] = {}
    if "options" in keys and keys["options"].value is not None:
        opts = keys["options"]
        if not isinstance(opts.value, dict):
            raise opts.error("expected a mapping of the program's globals to values, e.g. {targ_pid: 1234}")
        for key, value in opts.value.items():
            if isinstance(value.value, dict | list):
                raise value.error("expected a number, true/false or a string")
            options[key] = (value.value, Located(value))
    metrics_node = keys.get("metrics")
    if metrics_node is None:
        raise node.error("missing 'metrics': list counters, histograms or gauges", node.child_path("metrics"))
    metric_keys = _mapping(metrics_node, "metrics", tuple(KINDS))
    metrics: list[MetricConfig] = []
    for key, kind in KINDS.items():
        group = metric_keys.get(key)
        if group is None or group.value is None:
            continue
        if not isinstance(group.value, list):
            raise group.error(f"expected a list of {key}")
        metrics += [parse_metric(m, kind, total_suffix) for m in group.value]
    if not metrics:
        raise metrics_node.error("no metrics: add at least one counter, histogram or gauge")
    return ProgramConfig(name, filename, data, options, tuple(metrics), Located(node), base_dir)


def parse_metric(node: Node, kind: str, total_suffix: bool = True) -> MetricConfig:
    allowed: tuple[str, ...] = ("name", "description", "help", "labels", "map", "global", "max_series",
                                "expire_after", "value")
    if kind == "histogram":
        allowed += ("buckets",)
    else:
        allowed += ("multiplier",)
    if kind == "counter":
        allowed += ("total_suffix",)
    keys = _mapping(node, f"a {kind}", allowed)
    name = _text(node, keys, "name", required=True)
    assert name is not None
    if not METRIC_NAME.match(name):
        raise keys["name"].error(f"{shown(name)} is not a Prometheus metric name: use letters, digits, _ and :")
    if name.startswith(SELF_PREFIX):
        raise keys["name"].error(f"names starting {SELF_PREFIX} are the exporter's own metrics: pick another")
    if "description" in keys and "help" in keys:
        raise keys["help"].error("give either description or help, not both")
    description = _text(node, keys, "description") or _text(node, keys, "help") or ""
    labels = _labels(keys.get("labels"))
    map_name = _text(node, keys, "map") or None
    global_name = _text(node, keys, "global") or None
    if map_name is not None and global_name is not None:
        raise keys["global"].error("give either map or global, not both")
    from_global = global_name is not None
    map_name = map_name or global_name
    value = _text(node, keys, "value") or None
    max_series = DEFAULT_MAX_SERIES
    if "max_series" in keys:
        n = keys["max_series"].value
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise keys["max_series"].error(f"expected a whole number of series, 1 or more, got {shown(n)}")
        max_series = n
    expire = None
    if "expire_after" in keys and keys["expire_after"].value is not None:
        expire = _duration(keys["expire_after"])
        if map_name is not None:
            raise keys["expire_after"].error("a map metric shows what the map holds: expire_after is for event "
                                             "metrics")
    buckets = None
    if kind == "histogram":
        buckets = _buckets(node, keys.get("buckets"), map_name is not None)
    if kind in ("histogram", "gauge") and map_name is None and value is None:
        raise node.error(f"an event {kind} needs 'value': the event field it measures", node.child_path("value"))
    if "total_suffix" in keys:
        total_suffix = _flag(keys["total_suffix"])
    if kind == "counter" and not total_suffix and name.endswith("_total"):
        where = "total_suffix" if "total_suffix" in keys else "name"
        raise keys[where].error(f"{shown(name)} already ends in _total, and total_suffix: false serves names as "
                                "written: drop the suffix from the name, or set total_suffix: true")
    multiplier = 1.0
    if "multiplier" in keys:
        multiplier = _number(keys["multiplier"], positive=True)
        if map_name is None and value is None:
            raise keys["multiplier"].error("a count of events has nothing to scale: give 'value' (or 'map')")
    return MetricConfig(kind, name, description, labels, map_name, value, buckets, max_series, expire,
                        Located(node), total_suffix, multiplier, from_global)


def _labels(node: Node | None) -> tuple[LabelConfig, ...]:
    if node is None or node.value is None:
        return ()
    if not isinstance(node.value, list):
        raise node.error("expected a list of labels, each {name: ..., from: ...}")
    out: list[LabelConfig] = []
    seen: set[str] = set()
    for item in node.value:
        keys = _mapping(item, "a label", ("name", "from", "decoders"))
        name = _text(item, keys, "name", required=True)
        assert name is not None
        if not LABEL_NAME.match(name) or name.startswith("__"):
            raise keys["name"].error(f"{shown(name)} is not a Prometheus label name: use letters, digits and _, "
                                     "not starting with __")
        if name in RESERVED_LABELS:
            raise keys["name"].error(f"label name {shown(name)} is taken by {RESERVED_LABELS[name]}: rename it "
                                     f"(and keep the field with from: {name})")
        if name in seen:
            raise keys["name"].error(f"label {shown(name)} given twice in this metric")
        seen.add(name)
        source = _text(item, keys, "from") or name
        out.append(LabelConfig(name, source, _decoders(keys.get("decoders")), Located(item)))
    return tuple(out)


def _decoders(node: Node | None) -> tuple[DecoderConfig, ...]:
    if node is None or node.value is None:
        return ()
    items = node.value if isinstance(node.value, list) else [node]
    types = DECODERS
    out: list[DecoderConfig] = []
    for item in items:
        if isinstance(item.value, str):
            name, params, param_nodes = item.value, {}, {}
        elif isinstance(item.value, dict):
            param_nodes = dict(item.value)
            name_node = param_nodes.pop("name", None)
            if name_node is None or not isinstance(name_node.value, str):
                raise item.error("a decoder needs a 'name'", item.child_path("name"))
            name = name_node.value
            params = {k: v.plain for k, v in param_nodes.items()}
        else:
            raise item.error("expected a decoder name, or a mapping with 'name' and its parameters")
        kind = types.get(name)
        if kind is None:
            raise item.error(f"unknown label decoder {shown(name)}: use one of {', '.join(sorted(types))}")
        for key, param in param_nodes.items():
            if key not in kind.params:
                known = ", ".join(kind.params) or "none"
                raise param.error(f"decoder {name} has no parameter {shown(key)} (parameters: {known})")
        for key in kind.siblings:
            if params.get(key) is not None and out:
                raise param_nodes[key].error(f"decoder {name}: '{key}' names another member, which only a label's "
                                             "first decoder can read (the later ones take the text before them)")
        try:
            kind.make(params)
        except ValueError as e:
            raise item.error(f"decoder {name}: {e}") from None
        out.append(DecoderConfig(name, params, Located(item)))
    return tuple(out)


def check_unique_names(programs: tuple[ProgramConfig, ...] | list[ProgramConfig],
                       taken: dict[str, str] | None = None) -> None:
    """Metric names must be unique across the programs (after a counter's
    `_total` is dropped); `taken` maps names already in use to their owner."""
    seen = dict(taken or {})
    for p in programs:
        for m in p.metrics:
            owner = seen.get(m.exposed_name)
            if owner is not None:
                raise m.at.error(f"metric {shown(m.exposed_name)} is already defined by {owner}: metric names must be "
                                 "unique", "name")
            seen[m.exposed_name] = f"program {shown(p.name)}"
