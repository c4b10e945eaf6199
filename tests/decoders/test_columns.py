"""--containers columns planned on an event struct (decoders/columns.py)."""

from __future__ import annotations

import pytest

from pyeunomia.decoders.columns import container_columns, plan_columns
from pyeunomia.format.layout import Layout
from pyeunomia.source import open_package


@pytest.fixture(scope="module")
def layout() -> Layout:
    found = open_package("opensnoop").export_layout()
    assert found is not None
    return found


def test_container_columns_follow_the_tools_own(layout: Layout) -> None:
    cols = plan_columns(layout, {"pid": {"header": "PID"}, "comm": True}, containers=True)
    assert [c.header for c in cols] == ["PID", "comm", "RUNTIME", "CONTAINER", "POD", "NAMESPACE"]
    cgroup = [f.name for f in layout.fields].index("cgroup_id")
    assert {c.position for c in cols[2:]} == {cgroup}
    assert [(c.decoder, c.key) for c in cols[2:]] == [("container_runtime", "container_runtime"),
                                                       ("container", "container"), ("pod", "pod"),
                                                       ("k8s_namespace", "k8s_namespace")]


def test_a_struct_without_columns_shows_every_member_then_the_containers(layout: Layout) -> None:
    cols = plan_columns(layout, {}, containers=True)
    assert [c.member for c in cols[:-4]] == [f.name for f in layout.fields if f.name]
    assert plan_columns(layout, {}, containers=False) == []


def test_the_member_with_a_cgroup_decoder_wins_over_the_name(layout: Layout) -> None:
    ts = [f.name for f in layout.fields].index("ts")
    cols = container_columns(layout, {"ts": {"decoder": "cgroup"}})
    assert {c.position for c in cols} == {ts}


def test_no_cgroup_member_is_refused(layout: Layout) -> None:
    other = layout._replace(fields=tuple(f for f in layout.fields if f.name != "cgroup_id"))
    with pytest.raises(ValueError, match="no cgroup id member"):
        container_columns(other, {})


def test_filter_cgroup_map_is_the_runners_not_an_option() -> None:
    from pyeunomia.format.options import global_options

    package = open_package("opensnoop")
    assert "filter_cgroup_map" not in {o.name for o in global_options(package)}
    assert "filter_cgroup_map" in {o.name for o in global_options(package, runner_owned=True)}
