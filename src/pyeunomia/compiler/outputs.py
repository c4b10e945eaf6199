"""The files ecc writes, as upstream's ecc names them (compiler/cmd/src/config/
options.rs): OUTDIR/<name>.bpf.o always; the skeleton as <name>.skel.json,
or <name>.skel.yaml with -y; the package as package.json (package.yaml with
-y) unless -n/--no-generate-package-json; ewasm-skel.h with --wasm-header;
and with --btfgen <name>.tar, upstream's `ecc -b` form.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import CompileError
from ..format.btfarchive import upstream_tar
from .build import BuildResult
from .upstream import WASM_HEADER, wasm_header, yaml_text


def output_files(result: BuildResult, outdir: str, *, yaml: bool = False, package: bool = True,
                 wasm: bool = False) -> dict[Path, bytes]:
    out = Path(outdir)
    name = result.name
    text = result.package_json()
    files: dict[Path, bytes] = {}
    if package:
        files[out / ("package.yaml" if yaml else "package.json")] = (
            yaml_text(json.loads(text)) if yaml else text + "\n").encode("ascii")
    files[out / f"{name}.skel.{'yaml' if yaml else 'json'}"] = (
        yaml_text(result.meta) if yaml else result.skel_json() + "\n").encode("ascii")
    files[out / f"{name}.bpf.o"] = result.object
    if wasm:
        files[out / WASM_HEADER] = wasm_header(text).encode("ascii")
    if result.btfgen is not None:
        plain = (result.plain_package_json() + "\n").encode("ascii")
        files[out / f"{name}.tar"] = upstream_tar(plain, f"{name}.bpf.o", result.object, result.btfgen.archive)
    return files


def write_outputs(result: BuildResult, outdir: str, *, yaml: bool = False, package: bool = True,
                  wasm: bool = False) -> list[Path]:
    files = output_files(result, outdir, yaml=yaml, package=package, wasm=wasm)
    try:
        Path(outdir).mkdir(parents=True, exist_ok=True)
        for path, data in files.items():
            path.write_bytes(data)
    except OSError as e:
        raise CompileError(f"cannot write {e.filename or outdir}: {e.strerror}") from None
    return list(files)

