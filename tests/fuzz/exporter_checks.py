"""What the exporter's fuzz targets and property tests assert about its
parsers: the config (YAML or JSON), the web config, and the bodies of the
management API. Any input gives a value or a ConfigError (an ApiError for
/stop) whose message is one line naming the file, and the line when it is
given; planning a parsed config against the real built-in package gives
plans or ConfigErrors too. Anything else propagates: a bug."""

from __future__ import annotations

from typing import Any

from pyeunomia.errors import ConfigError, EunomiaError
from pyeunomia.exporter import document
from pyeunomia.exporter.config import (
    MAX_REQUEST_BODY,
    ExporterConfig,
    ProgramConfig,
    parse_config,
    program_from_request,
)
from pyeunomia.exporter.event_metrics import EventMetric
from pyeunomia.exporter.plan import ProgramPlan, plan_program
from pyeunomia.exporter.server import ApiError, parse_stop_body
from pyeunomia.exporter.webconfig import WebConfig, parse_web_config

from .contract import check_message, outcome

BASE_DIR = "/nonexistent-pyeunomia-fuzz"  # relative package paths resolve to nothing


def check_config_error(e: ConfigError, file: str, text: str) -> None:
    message = check_message(e)
    assert e.file == file and message.startswith(file), message
    if e.line is not None:  # YAML breaks lines at \r and \x85 too; splitlines() at all of them and more
        lines = len(text.splitlines())
        assert 1 <= e.line <= lines + 1, f"line {e.line} of a {lines}-line text"
    if e.key:
        assert e.key in message


def check_document_bounds(text: str, file: str, as_json: bool) -> None:
    """A document is built with at most MAX_NODES values, MAX_DEPTH levels,
    and no whole number wider than MAX_INT_BITS; or refused with a ConfigError."""
    try:
        root = document.parse_text(text, file, as_json)
    except ConfigError as e:
        check_config_error(e, file, text)
        return
    count, stack = 0, [(root, 0)]
    while stack:
        node, depth = stack.pop()
        count += 1
        assert depth <= document.MAX_DEPTH, f"a value {depth} levels deep"
        if isinstance(node.value, dict | list):
            children = node.value.values() if isinstance(node.value, dict) else node.value
            stack += [(child, depth + 1) for child in children]
        elif isinstance(node.value, int):
            assert node.value.bit_length() <= document.MAX_INT_BITS, "a whole number over 128 bits"
    assert count <= document.MAX_NODES, f"{count} values built"


def check_config_text(text: str, as_json: bool) -> ExporterConfig | None:
    file = "fuzz.json" if as_json else "fuzz.yaml"
    check_document_bounds(text, file, as_json)
    try:
        config = parse_config(text, file, as_json=as_json)
    except ConfigError as e:
        check_config_error(e, file, text)
        return None
    for program in config.programs:
        check_plan(program, file, text)
    return config


def _fetches(program: ProgramConfig) -> bool:
    """A package named by URL would be downloaded: not in a fuzz run."""
    return "://" in (program.compiled_ebpf_filename or "")


def check_plan(program: ProgramConfig, file: str, text: str) -> ProgramPlan | None:
    if _fetches(program):
        return None
    try:
        plan = plan_program(program)
    except ConfigError as e:
        check_config_error(e, file, text)
        return None
    for m in plan.metrics:
        if m.map is None:
            assert plan.layout is not None
            EventMetric(m, plan.layout)  # compiles the metric's per-run function
    return plan


def check_web_config_text(text: str) -> WebConfig | None:
    try:
        return parse_web_config(text, "web.yml")
    except ConfigError as e:
        check_config_error(e, "web.yml", text)
        return None


def check_start_body(body: bytes) -> Any:
    """POST /start: a program config, or the one-line error the API answers 400 with."""
    program = outcome(lambda: program_from_request(body, BASE_DIR), (EunomiaError,))
    assert program is None or len(body) <= MAX_REQUEST_BODY, "a body over MAX_REQUEST_BODY was parsed"
    if program is not None:
        text = body.decode("utf-8")
        check_plan(program, "<request>", text)
    return program


def check_stop_body(body: bytes) -> int | None:
    try:
        program_id = parse_stop_body(body)
    except ApiError as e:
        assert e.status == 400
        check_message(e)
        return None
    assert isinstance(program_id, int) and not isinstance(program_id, bool)
    return program_id
