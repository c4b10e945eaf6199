"""The scheduler group of the catalogue (runqlat, runqslower, runqlen,
cpudist, offcputime, profile): one row per tool, and runqlat's and
offcputime's raw_tp twins forced with --skip (the tp_btf programs are what
every kernel of the matrix takes, so the twins would otherwise never run
there).

The histogram tools print their maps every second (-i 1) so a check can
stop as soon as the trigger's pid has counts. Standard library only: the
guest imports this too.
"""

from __future__ import annotations

from . import actions as a
from .checks import event, frame, hist, said
from .matrix import Program, row

BTF_PROGS = "sched_wakeup_btf,sched_wakeup_new_btf,sched_switch_btf"


def _cpu_hist(cpu: int) -> dict[str, str | int]:
    """runqlen -C's histogram of one CPU (`global` is a keyword: no keyword argument)."""
    return {"global": "cpu_hists", "key": cpu}


ROWS: tuple[Program, ...] = (
    row("tool/runqlat", None, "ecli run -v -j -i 1 runqlat -P", a.sleepy_child,
        [hist("{pid}"), said("loads 'sched_switch_btf' (tp_btf)")]),
    row("tool/runqlat-raw_tp", None, f"ecli run -j -i 1 --skip {BTF_PROGS} runqlat -P", a.sleepy_child,
        [hist("{pid}")]),
    row("tool/runqslower", None, "ecli run -j runqslower --min-us 0", a.sleepy_child,
        [event(tgid="{pid}", pid="{pid}", task="{comm}")]),
    row("tool/runqlen", None, "ecli run -j -i 1 runqlen -C", a.busy_child,
        [event(**_cpu_hist(0)), event(**_cpu_hist(1))]),
    # -O: the occupancy map and its code (folded away without -O); -f: the runner's -F by runqlen's name
    row("tool/runqlen-O", None, "ecli run -j -i 1 runqlen -O -C -f 99", a.busy_child,
        [event(map="occupancy", key=0), event(map="occupancy", key=1)]),
    row("tool/cpudist", None, "ecli run -j -i 1 cpudist -P", a.sleepy_child, [hist("{pid}")]),
    row("tool/cpudist-offcpu", None, "ecli run -j -i 1 cpudist -O -L", a.sleepy_child, [hist("{pid}")]),
    row("tool/offcputime", None, "ecli run -j offcputime -u", a.sleepy_child,
        [event(pid="{pid}", tid="{pid}", comm="{comm}"), frame("kstack", "schedule")]),
    row("tool/offcputime-raw_tp", None, "ecli run -j --skip sched_switch_btf offcputime -u", a.sleepy_child,
        [event(pid="{pid}", tid="{pid}", comm="{comm}"), frame("kstack", "schedule")]),
    row("tool/profile", None, "ecli run -j -F 99 profile", a.busy_child,
        [event(pid="{pid}", tid="{pid}", comm="{comm}")]),
    # @resize: the stack map created with 64 buckets of 4 frames, by libbpf before the load
    row("tool/profile-resize", None, "ecli run -j profile -F 99 --stack-storage-size 64 --perf-max-stack-depth 4",
        a.busy_child, [event(pid="{pid}", tid="{pid}", comm="{comm}")]),
    # --container: filter_cgroup_map set, so the verifier keeps the container filter's code (folded away
    # without it); the guest runs no container, so every event is dropped: loading is the check
    row("tool/runqlat-container", None, "ecli run -j --container kmx-none runqlat -P", a.sleepy_child,
        [said("attached; Ctrl-C to stop")]),
    row("tool/runqslower-container", None, "ecli run -j --container kmx-none runqslower --min-us 0", a.sleepy_child,
        [said("attached; Ctrl-C to stop")]),
    row("tool/cpudist-container", None, "ecli run -j --container kmx-none cpudist -P", a.sleepy_child,
        [said("attached; Ctrl-C to stop")]),
    row("tool/offcputime-container", None, "ecli run -j --container kmx-none offcputime -u", a.sleepy_child,
        [said("attached; Ctrl-C to stop")]),
    row("tool/profile-container", None, "ecli run -j -F 99 --container kmx-none profile", a.busy_child,
        [said("attached; Ctrl-C to stop")]),
)
