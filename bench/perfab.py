"""A narrow A/B of tracers under the full-speed producer, interleaved.

On a shared 2-core machine one run of each tracer says little: this runs
rounds of (untraced, A, B, ...) in turn, and prints for each the median and
the spread (min–max) of the added ns per open and of the events lost.

    python bench/perfab.py --rounds 5 --opens 300000 tutorial opensnoop
    python bench/perfab.py old=/tmp/base/src new=src   # the tutorial's program by two source trees
    python bench/perfab.py rb=/tmp/rb/package.json      # a package of one's own, `ecli run` of this tree

A name is one of the bench's tracers (see `--list`); NAME=SRC_DIR runs
`ecli run` of the tutorial's perf-array opensnoop with pyeunomia imported
from SRC_DIR instead; NAME=PACKAGE.json[,ARG...] runs `ecli run ARG... PACKAGE`
(the package must print the opened file's path, as the tutorial's does).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import BIN, PRODUCER_CPU, ROOT, Tracer, build_producer, temp_dir, tracers

ECLI = "import sys; from pyeunomia.cli.ecli import entry; sys.exit(entry())"


def variant(name: str, src: str) -> Tracer:
    from common import tutorial_package

    if src.split(",")[0].endswith(".json"):
        package, *extra = src.split(",")
        return Tracer(name, [str(BIN / "ecli"), "run", *extra, str(Path(package).resolve())])
    env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
    return Tracer(name, [str(BIN / "python"), "-c", ECLI, "run", str(tutorial_package())], env=env)


def produce_cpu(n: int, path: str) -> tuple[float, float]:
    """(wall, CPU) ns per open of one producer run. The CPU time (user and
    system, from wait4) leaves out the time others' processes took the
    producer's CPU: on a shared machine it moves far less than the wall time."""
    proc = subprocess.Popen([str(build_producer()), str(n), path, str(PRODUCER_CPU)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    wall = float(proc.stdout.read().strip())
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, (usage.ru_utime + usage.ru_stime) * 1e9 / n


def one(tracer: Tracer, n: int, work: Path) -> tuple[float, float, int, str]:
    """wall and CPU ns per open under `tracer`, the opens it did not print, its loss report."""
    target = work / f"t-{os.getpid()}"
    target.write_text("x")
    out = work / "trace.out"
    run = tracer.start(out)
    try:
        run.wait_ready(work)
        wall, cpu = produce_cpu(n, str(target))
    finally:
        err = run.stop()
    got = out.read_bytes().count(target.name.encode() + b"\n")
    report = "; ".join(line for line in err.splitlines() if "lost" in line.lower())
    return wall, cpu, n - got, report[:120]


def spread(values: list[float], fmt: str = "{:,.0f}") -> str:
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}–{fmt.format(max(values))})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("names", nargs="*")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--opens", type=int, default=300_000)
    p.add_argument("--list", action="store_true")
    args = p.parse_args()
    known = tracers()
    if args.list:
        print("\n".join(known))
        return
    chosen: list[Tracer] = []
    for name in args.names:
        if "=" in name:
            chosen.append(variant(*name.split("=", 1)))
        else:
            matches = [t for k, t in known.items() if k == name] or [t for k, t in known.items() if name in k]
            if not matches:
                p.error(f"no tracer {name!r}: --list shows them")
            chosen.append(matches[0])
    work = temp_dir()
    base: list[float] = []
    base_cpu: list[float] = []
    added: dict[str, list[float]] = {t.name: [] for t in chosen}
    added_cpu: dict[str, list[float]] = {t.name: [] for t in chosen}
    lost: dict[str, list[float]] = {t.name: [] for t in chosen}
    for r in range(args.rounds):
        wall, cpu = produce_cpu(args.opens, "/etc/hostname")
        base.append(wall)
        base_cpu.append(cpu)
        for t in chosen:
            wall, cpu, missing, report = one(t, args.opens, work)
            added[t.name].append(wall - base[-1])
            added_cpu[t.name].append(cpu - base_cpu[-1])
            lost[t.name].append(missing)
            print(f"round {r + 1}: {t.name}: {wall - base[-1]:+,.0f} ns, CPU {cpu - base_cpu[-1]:+,.0f} ns, "
                  f"lost {missing} {report}", file=sys.stderr)
    print(f"{args.opens:,} opens per run, {args.rounds} rounds; untraced {spread(base)} ns per open, "
          f"CPU {spread(base_cpu)}")
    for t in chosen:
        print(f"{t.name:42} added {spread(added[t.name])} ns, CPU {spread(added_cpu[t.name])}   "
              f"lost {spread(lost[t.name])}")


if __name__ == "__main__":
    os.chdir(ROOT)
    main()
