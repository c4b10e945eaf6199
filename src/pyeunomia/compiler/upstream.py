"""What upstream's ecc command line asks for besides a package, made here:
`--header-only` (an object that only carries a header's structs), `-y/--yaml`
(the skeleton and package as YAML), `--wasm-header` (the package as a C
string in ewasm-skel.h) and `-w/--workspace-path` (upstream's workspace
layout of headers and tools). Upstream's options are listed in its
compiler/cmd/src/config/mod.rs (CompileArgs); cli/ecc.py maps each to these.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import EunomiaError, UsageError
from .build import BuildOptions, BuildResult, build
from .toolchain import target_arch

WASM_HEADER = "ewasm-skel.h"
# Upstream's template (compiler/cmd/src/wasm.rs), with the string escaped for C.
WASM_TEMPLATE = """
    // auto generated. do not edit.
    #ifndef EWASM_JSON_INCLUDE_H_
    #define EWASM_JSON_INCLUDE_H_
    char* program_data = "{}";
    #endif
    """


def object_name(path: str) -> str:
    """Upstream's name for the outputs: the file name up to its first dot
    (sigsnoop.h -> sigsnoop, tc.bpf.c -> tc)."""
    return Path(path).name.split(".")[0] or "prog"


def build_header_only(options: BuildOptions) -> BuildResult:
    """`ecc HEADER --header-only`: an object with no program whose BTF holds
    the header's structs (its export types), for tools that read them from
    BTF (upstream's struct-bindgen). The header is compiled as C through a
    one-line unit that includes it, as upstream compiles a copy of it."""
    header = Path(options.source)
    if not header.is_file():
        raise UsageError(f"{options.source}: no such header file: check the path")
    with tempfile.TemporaryDirectory(prefix="ecc-header-") as tmp:
        unit = Path(tmp) / f"{object_name(options.source)}.c"
        # A global for clang to emit BTF at all; the package leaves out
        # variables named __eunomia_dummy*, as upstream does its own.
        unit.write_text(f'#include "{header.resolve()}"\n'
                        "const volatile char __eunomia_dummy_header_only __attribute__((unused));\n")
        # the header's own directory first, as if it were compiled where it is
        dirs = (str(header.resolve().parent), *options.include_dirs)
        try:
            result = build(replace(options, source=str(unit), header=str(header), include_dirs=dirs))
        except EunomiaError as e:
            # messages name the header, not the unit made for it
            e.args = tuple(a.replace(str(unit), options.source) if isinstance(a, str) else a for a in e.args)
            raise
        return replace(result, warnings=result.warnings.replace(str(unit), options.source))


def workspace_include_dirs(workspace: str, arch: str | None) -> list[str]:
    """-I directories of upstream's workspace layout: include/ (libbpf's
    headers) and include/vmlinux/<arch>/ (its vmlinux.h)."""
    if not os.path.isdir(workspace):
        raise UsageError(f"-w {workspace}: no such directory: pass upstream's workspace (include/, bin/)")
    found = [d for d in (os.path.join(workspace, "include"),
                         os.path.join(workspace, "include", "vmlinux", target_arch(arch))) if os.path.isdir(d)]
    if not found:
        raise UsageError(f"-w {workspace}: no include/ directory in it: pass upstream's workspace (include/, bin/)")
    return found


def workspace_bpftool(workspace: str) -> str | None:
    path = os.path.join(workspace, "bin", "bpftool")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


def yaml_text(value: Any) -> str:
    """`value` as YAML, keys sorted as upstream's serde_yaml writes its
    (sorted) JSON values."""
    import yaml  # only for -y: PyYAML costs ~20 ms to import

    return str(yaml.safe_dump(value, sort_keys=True, default_flow_style=False, allow_unicode=False,
                              width=1 << 30))


def wasm_header(package_json: str) -> str:
    """ewasm-skel.h: the package as a C string literal. Upstream escapes only
    the quotes, which breaks a package whose JSON holds a backslash (any
    escaped newline in a description); this escapes backslashes too."""
    return WASM_TEMPLATE.format(package_json.replace("\\", "\\\\").replace('"', '\\"'))
