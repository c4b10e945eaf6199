"""Regenerate the x86_64 syscall table in src/pyeunomia/format/syscalls.py.

    .venv/bin/python scripts/gen_syscalls.py [/usr/include/x86_64-linux-gnu/asm/unistd_64.h]

The table between the BEGIN/END fences is the kernel's own numbering as the
UAPI header `asm/unistd_64.h` (linux-libc-dev) gives it, plus NEWER below:
the syscalls added after the header's kernel (Debian 12 ships 6.1's), from
arch/x86/entry/syscalls/syscall_64.tbl of later kernels. A number never
changes once given, so the table only grows.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "src" / "pyeunomia" / "format" / "syscalls.py"
BEGIN, END = "# BEGIN x86_64 table (scripts/gen_syscalls.py)\n", "# END x86_64 table\n"
NEWER = {  # 6.2 .. 6.17 (syscall_64.tbl)
    "cachestat": 451, "fchmodat2": 452, "map_shadow_stack": 453, "futex_wake": 454, "futex_wait": 455,
    "futex_requeue": 456, "statmount": 457, "listmount": 458, "lsm_get_self_attr": 459,
    "lsm_set_self_attr": 460, "lsm_list_modules": 461, "mseal": 462, "setxattrat": 463, "getxattrat": 464,
    "listxattrat": 465, "removexattrat": 466, "open_tree_attr": 467, "file_getattr": 468, "file_setattr": 469,
}


def table(header: str) -> dict[str, int]:
    found = {m[1]: int(m[2]) for m in re.finditer(r"^#define __NR_(\w+)\s+(\d+)\s*$", header, re.M)}
    return dict(sorted({**found, **NEWER}.items(), key=lambda kv: kv[1]))


def main(argv: list[str]) -> int:
    header = Path(argv[0] if argv else "/usr/include/x86_64-linux-gnu/asm/unistd_64.h").read_text()
    rows = table(header)
    body = "X86_64: dict[str, int] = {\n" + "".join(f"    {n!r}: {v},\n" for n, v in rows.items()) + "}\n"
    text = TARGET.read_text()
    head, _, rest = text.partition(BEGIN)
    _, _, tail = rest.partition(END)
    TARGET.write_text(head + BEGIN + body + END + tail)
    print(f"{len(rows)} syscalls written to {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
