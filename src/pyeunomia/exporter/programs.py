"""The running programs, by id: started from the config at launch and by the
management API later, stopped by the API and at shutdown.

Ids count up from 0 and are never reused, as upstream's are. Metric names
must stay unique across everything running: a program whose metric name is
taken is refused before anything is loaded.
"""

from __future__ import annotations

import threading

from ..errors import ConfigError
from ..runner.kernelbtf import BtfFile
from .config import check_unique_names
from .instance import ProgramInstance, Snapshot
from .plan import ProgramPlan
from .priority import ScrapeGate


class NameConflict(ConfigError):
    """A metric name another running program already has."""


class ProgramSet:
    def __init__(self, verbose: bool = False, run_stats: bool = False, gate: ScrapeGate | None = None,
                 btf: BtfFile | None = None):
        self.verbose = verbose
        self.btf = btf  # --btf, read once: API loads come after the exporter dropped its privileges
        self.gate = gate  # scrapes go first: event threads wait on it between runs
        self.run_stats = run_stats  # the kernel keeps BPF run-time statistics
        self._lock = threading.Lock()  # guards _running and _next_id
        # One load or unload at a time: names are checked, then loaded; and
        # libbpf's log handler, which a load sets and an unload clears, is global.
        self._starting = threading.Lock()
        self._running: dict[int, ProgramInstance] = {}
        self._next_id = 0

    def start(self, plan: ProgramPlan, run: bool = True) -> int:
        """Load, attach and (unless `run` is false: see run_all) start
        reading `plan`; its id."""
        with self._starting:
            taken = {m.exposed_name: f"running program {i.id} ({i.name})"
                     for i in self.instances() for m in i.plan.config.metrics}
            try:
                check_unique_names([plan.config], taken)
            except ConfigError as e:
                raise NameConflict(str(e)) from None
            with self._lock:
                new_id = self._next_id
            instance = ProgramInstance(new_id, plan, self.verbose, self.gate, self.btf)
            with self._lock:
                self._next_id += 1
                self._running[new_id] = instance
            if run:
                instance.start()
            return new_id

    def run_all(self) -> None:
        """Start the event threads of programs started with run=False."""
        for instance in self.instances():
            if not instance.started:
                instance.start()

    def stop(self, program_id: int) -> bool:
        """Stop and unload a program; False when no program has that id."""
        with self._starting:
            with self._lock:
                instance = self._running.pop(program_id, None)
            if instance is None:
                return False
            instance.stop()
            return True

    def any_program_fd(self) -> int | None:
        """The fd of some loaded BPF program, for probing what the kernel
        lets the exporter do with the objects it holds; None: nothing loaded."""
        for instance in self.instances():
            for p in instance.program.loaded.programs:
                if p.fd >= 0:
                    return p.fd
        return None

    def instances(self) -> list[ProgramInstance]:
        with self._lock:
            return [self._running[k] for k in sorted(self._running)]

    def listing(self) -> list[dict[str, object]]:
        return [{"id": i.id, "name": i.name} for i in self.instances()]

    def snapshots(self) -> list[Snapshot]:
        return [i.snapshot(run_stats=self.run_stats) for i in self.instances()]

    def stop_all(self) -> None:
        with self._lock:
            ids = sorted(self._running)
        for program_id in ids:
            self.stop(program_id)
