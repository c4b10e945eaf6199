"""Addresses to function names, for stack traces.

Kernel: /proc/kallsyms, read once on the first kernel stack (0.4-0.6 s
for 122k text symbols on this 6.18 kernel), then one bisection per new address.

User: /proc/PID/maps says which file holds an address; the file is opened
through /proc/PID/root (so a process in a container is symbolized with its
own files), checked to be the mapped inode, else through
/proc/PID/map_files/ (a deleted or replaced file). Its .symtab and .dynsym
are read once per file, cached by build id where the file has one (the same
library in two containers is read once) and by device and inode otherwise; a
stripped file's symbols come from /usr/lib/debug/.build-id/ when that holds
its debug file.

Caches make repeated stacks free: a whole stack (kernel, or pid and user
stack) maps to the same tuple of frames, and an address to its frame. Every
cache is bounded (entries below) and simply emptied when full: deterministic,
and a profile's working set refills it in a few samples.

A return address is looked up one byte back (inside the call), as perf
does: a call that ends a function (to a noreturn function) is not charged to
the next function. The first address of a stack is where the sample hit and
is looked up as is.
"""

from __future__ import annotations

import os
import stat
import time
from bisect import bisect_right
from typing import NamedTuple

from ..files import read_regular
from ..format.elf import ELFError
from ..format.stacks import Frame
from ..format.symbols import ElfSymbols, Mapping, SymbolTable, elf_symbols, parse_kallsyms, parse_maps

STACK_CACHE = 1 << 14  # whole stacks remembered (kernel and user each)
ADDRESS_CACHE = 1 << 16  # single addresses remembered
PROCESS_CACHE = 512  # processes whose mappings are remembered
FILE_CACHE = 256  # ELF files whose symbols are remembered
MAPS_REREAD_S = 1.0  # an address outside every mapping re-reads the maps at most this often
KALLSYMS_LIMIT = 256 << 20
MAPS_LIMIT = 64 << 20
DEBUG_ROOT = "/usr/lib/debug/.build-id"


class _Process(NamedTuple):
    mappings: list[Mapping]
    starts: list[int]
    read_at: float


class _Mapped(NamedTuple):
    symbols: ElfSymbols | None  # None: not a readable ELF file


class Symbolizer:
    """Frames for kernel and user addresses, cached (see the module doc)."""

    def __init__(self, proc: str = "/proc", debug_root: str = DEBUG_ROOT):
        self.proc = proc
        self.debug_root = debug_root
        self._kallsyms: SymbolTable | None = None
        self._kernel_stacks: dict[tuple[int, ...], tuple[Frame, ...]] = {}
        self._kernel_addresses: dict[int, Frame] = {}
        self._user_stacks: dict[tuple[int, tuple[int, ...]], tuple[Frame, ...]] = {}
        self._user_addresses: dict[tuple[int, int], Frame] = {}
        self._processes: dict[int, _Process] = {}
        self._comms: dict[int, bytes] = {}  # the comm each pid was last seen with
        self._files: dict[tuple[int, ...] | bytes, _Mapped] = {}
        self.files_read = 0  # symbol tables read: a test's window on the file caches

    # -- kernel -------------------------------------------------------------------

    def kernel_table(self) -> SymbolTable:
        if self._kallsyms is None:
            try:
                text = read_regular(f"{self.proc}/kallsyms", KALLSYMS_LIMIT).decode("ascii", "replace")
            except OSError:
                text = ""
            self._kallsyms = parse_kallsyms(text)
        return self._kallsyms

    def kernel(self, addresses: tuple[int, ...]) -> tuple[Frame, ...]:
        frames = self._kernel_stacks.get(addresses)
        if frames is None:
            if len(self._kernel_stacks) >= STACK_CACHE:
                self._kernel_stacks.clear()
            frames = self._kernel_stacks[addresses] = tuple(
                self._kernel_frame(a, i == 0) for i, a in enumerate(addresses))
        return frames

    def _kernel_frame(self, address: int, exact: bool) -> Frame:
        key = address if exact else -address
        frame = self._kernel_addresses.get(key)
        if frame is None:
            if len(self._kernel_addresses) >= ADDRESS_CACHE:
                self._kernel_addresses.clear()
            back = 0 if exact else 1
            found = self.kernel_table().lookup(address - back)
            frame = Frame(address, found.name, found.offset + back, "") if found else Frame(address, None, 0, "")
            self._kernel_addresses[key] = frame
        return frame

    # -- user ---------------------------------------------------------------------

    def user(self, pid: int, addresses: tuple[int, ...], comm: bytes | None = None) -> tuple[Frame, ...]:
        """`comm`, the sample's: a pid whose comm changed has exec'd (or is
        another process): what was cached for it is another program's. A
        sample taken between fork and exec cached the parent's maps, and
        every later address of the new program stayed unknown."""
        if comm is not None and self._comms.setdefault(pid, comm) != comm:
            self._forget(pid)
            self._comms[pid] = comm
        if len(self._comms) > PROCESS_CACHE:
            self._comms.clear()
        key = (pid, addresses)
        frames = self._user_stacks.get(key)
        if frames is None:
            frames = tuple(self._user_frame(pid, a, i == 0) for i, a in enumerate(addresses))
            if all(f.module for f in frames):  # an address in no mapping may be mapped later: not kept
                if len(self._user_stacks) >= STACK_CACHE:
                    self._user_stacks.clear()
                self._user_stacks[key] = frames
        return frames

    def _forget(self, pid: int) -> None:
        self._processes.pop(pid, None)
        for stack in [k for k in self._user_stacks if k[0] == pid]:
            del self._user_stacks[stack]
        for address in [k for k in self._user_addresses if k[0] == pid]:
            del self._user_addresses[address]

    def _user_frame(self, pid: int, address: int, exact: bool) -> Frame:
        key = (pid, address if exact else -address)
        frame = self._user_addresses.get(key)
        if frame is not None:
            return frame
        back = 0 if exact else 1
        mapping = self._mapping(pid, address - back)
        frame = Frame(address, None, 0, "")
        if mapping is not None and mapping.path:
            frame = Frame(address, None, 0, mapping.path)
        if mapping is not None and mapping.path and mapping.executable and not mapping.path.startswith("/dev/"):
            # only code is opened: a data mapping names no function, and a device is not a file to read
            mapped = self._mapped(pid, mapping)
            if mapped.symbols is not None:
                at = mapped.symbols.address_of(address - back - mapping.start + mapping.offset)
                found = mapped.symbols.symbols.lookup(at) if at is not None else None
                if found is not None:
                    frame = Frame(address, found.name, found.offset + back, mapping.path)
        elif mapping is None:
            return frame  # in no mapping (yet: a dlopen, an exec) or the process is gone: not remembered
        if len(self._user_addresses) >= ADDRESS_CACHE:
            self._user_addresses.clear()
        self._user_addresses[key] = frame
        return frame

    def _process(self, pid: int, fresh: bool = False) -> _Process | None:
        process = self._processes.get(pid)
        if process is not None and not fresh:
            return process
        try:
            text = read_regular(f"{self.proc}/{pid}/maps", MAPS_LIMIT).decode("utf-8", "surrogateescape")
        except OSError:
            self._processes.pop(pid, None)
            return None
        if len(self._processes) >= PROCESS_CACHE:
            self._processes.clear()
        mappings = parse_maps(text)
        process = self._processes[pid] = _Process(mappings, [m.start for m in mappings], time.monotonic())
        return process

    def _mapping(self, pid: int, address: int) -> Mapping | None:
        process = self._process(pid)
        for attempt in (0, 1):
            if process is None:
                return None
            found = _find(process, address)
            if found is not None or attempt or time.monotonic() - process.read_at < MAPS_REREAD_S:
                return found
            process = self._process(pid, fresh=True)  # mapped since (dlopen, a new exec)
        return None

    def _mapped(self, pid: int, mapping: Mapping) -> _Mapped:
        fd = self._open(pid, mapping)
        if fd is None:
            return _Mapped(None)
        try:
            st = os.fstat(fd)
            inode_key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
            cached = self._files.get(inode_key)
            if cached is None:
                cached = self._files[inode_key] = self._parse(pid, fd, st.st_size)
            return cached
        finally:
            os.close(fd)

    def _parse(self, pid: int, fd: int, size: int) -> _Mapped:
        """A file's symbols; those of a file with the same build id when one
        was read (the same library in two containers), without reading its
        symbol tables again."""
        if len(self._files) >= FILE_CACHE:
            self._files.clear()
        seen: list[_Mapped] = []

        def known(build_id: bytes) -> ElfSymbols | None:
            found = self._files.get(build_id)
            if found is not None:
                seen.append(found)
            return found.symbols if found is not None else None

        try:
            symbols = elf_symbols(lambda off, n: os.pread(fd, n, off), size, known)
        except (ELFError, OSError):
            return _Mapped(None)
        if seen:
            return seen[0]
        self.files_read += 1
        if not symbols.has_symtab and symbols.build_id:
            symbols = self._with_debug_file(pid, symbols)
        mapped = _Mapped(symbols)
        if symbols.build_id:
            self._files[symbols.build_id] = mapped
        return mapped

    def _with_debug_file(self, pid: int, symbols: ElfSymbols) -> ElfSymbols:
        """A stripped file's full symbols from its separate debug file, by
        build id, in the process's own root."""
        hexid = symbols.build_id.hex()
        path = f"{self.proc}/{pid}/root{self.debug_root}/{hexid[:2]}/{hexid[2:]}.debug"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
        except OSError:
            return symbols
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return symbols
            debug = elf_symbols(lambda off, n: os.pread(fd, n, off), st.st_size)
        except (ELFError, OSError):
            return symbols
        finally:
            os.close(fd)
        if not debug.has_symtab:
            return symbols
        entries = [(s, z, n) for t in (debug.symbols, symbols.symbols) for s, z, n in zip(t.starts, t.sizes, t.names,
                                                                                        strict=True)]
        return symbols._replace(symbols=SymbolTable(entries), has_symtab=True)

    def _open(self, pid: int, mapping: Mapping) -> int | None:
        """The mapped file: through the process's root, or as named, when
        that is still the mapped inode, else through map_files (deleted or
        replaced)."""
        candidates = []
        if not mapping.path.endswith(" (deleted)") and mapping.path.startswith("/"):
            # maps shows a path from our root when we can reach the file (a chroot), else from the
            # process's own mount namespace (a container): try both, the inode tells which is right
            candidates += [f"{self.proc}/{pid}/root{mapping.path}", mapping.path]
        candidates.append(f"{self.proc}/{pid}/map_files/{mapping.start:x}-{mapping.end:x}")
        for path in candidates:
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                st = os.fstat(fd)
            except OSError:
                os.close(fd)
                continue
            if stat.S_ISREG(st.st_mode) and (st.st_ino == mapping.inode or not mapping.inode):
                return fd
            os.close(fd)
        return None


def _find(process: _Process, address: int) -> Mapping | None:
    i = bisect_right(process.starts, address) - 1
    if i >= 0 and address < process.mappings[i].end:
        return process.mappings[i]
    return None
