"""The management API against the real kernel: off by default, a bearer
token on every call, /start loads and attaches a program whose metrics then
count real opens, /stop unloads it, and bad requests get 4xx answers while the
exporter keeps running."""

from __future__ import annotations

import json
import secrets
import signal

import pytest

from pyeunomia.source import builtin_packages

from ..conftest import assert_nothing_new_loaded, loaded_prog_ids
from ..exporter.live import Exporter, Opener
from .helpers import temp_dir

pytestmark = pytest.mark.usefixtures("kernel")

EMPTY = "programs: []\n"


def program_doc(pid: int, metric: str = "api_opens") -> dict:
    with open(builtin_packages()["opensnoop"]) as f:
        package = f.read()
    return {"name": "opensnoop", "ebpf_data": package, "options": {"pid": pid},
            "metrics": {"counters": [{"name": metric, "description": "opens through the API",
                                      "labels": [{"name": "comm"}, {"name": "filename", "from": "fname"}]}]}}


def test_the_api_is_off_unless_enabled():
    tmp = temp_dir()
    before = loaded_prog_ids()
    with Exporter(tmp, EMPTY) as exp:
        status, doc = exp.post("/start", program_doc(1))
        assert status == 404 and "--enable-api" in doc["error"]
        assert exp.get("/list")[0] == 404
    assert loaded_prog_ids() - before == set()


def test_start_list_stop_with_a_token():
    tmp = temp_dir()
    token = secrets.token_hex(24)
    token_file = tmp / "token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    target = tmp / "via-api.txt"
    target.write_text("x")
    child = Opener(tmp, "a")
    before = loaded_prog_ids()
    with Exporter(tmp, EMPTY, "--enable-api", "--api-token-file", str(token_file)) as exp:
        assert exp.post("/start", program_doc(child.pid))[0] == 401
        assert exp.post("/start", program_doc(child.pid), token="x" * 32)[0] == 401
        assert loaded_prog_ids() - before == set()

        status, doc = exp.post("/start", program_doc(child.pid), token)
        assert (status, doc) == (200, {"id": 0})
        assert len(loaded_prog_ids() - before) == 4
        status, _, body = exp.get("/list", {"Authorization": f"Bearer {token}"})
        assert status == 200 and json.loads(body) == [{"id": 0, "name": "opensnoop"}]

        child.do("open", target, 4)
        exp.wait_for(lambda: exp.value("api_opens_total", comm=child.name, filename=str(target)) == 4,
                     what="4 opens through the API's program")

        # a second program may not reuse the metric name; nothing more is loaded
        status, doc = exp.post("/start", program_doc(child.pid), token)
        assert status == 409 and "already defined by running program 0" in doc["error"]
        assert len(loaded_prog_ids() - before) == 4

        for bad, words in ((b"{oops", "invalid JSON"), ({"name": "opensnoop"}, "missing 'metrics'"),
                           ({**program_doc(1, "other"), "ebpf_data": "{}"}, "cannot open the package"),
                           ({**program_doc(1, "other"), "options": {"pid": "abc"}}, "targ_pid")):
            status, doc = exp.post("/start", bad, token)
            assert status == 400 and words in doc["error"], doc
        assert exp.post("/stop", {"id": 7}, token)[0] == 404
        assert exp.post("/stop", {"nope": 0}, token)[0] == 400

        status, doc = exp.post("/stop", {"id": 0}, token)
        assert (status, doc) == (200, {})
        assert_nothing_new_loaded(before)
        assert exp.value("api_opens_total", comm=child.name, filename=str(target)) is None
        status, _, body = exp.get("/list", {"Authorization": f"Bearer {token}"})
        assert json.loads(body) == []

        # ids are never reused
        status, doc = exp.post("/start", program_doc(child.pid), token)
        assert (status, doc) == (200, {"id": 1})
        assert exp.stop(signal.SIGTERM) == 0  # shutdown unloads what the API started
    child.close()
    assert_nothing_new_loaded(before)
