"""ecc's pipeline: C source (+ export header) -> BPF object + package metadata.

1. clang compiles the source for CO-RE (-target bpf -g -O2); llvm-strip -g
   drops DWARF and keeps BTF. -MD tells which headers the source read.
2. clang dumps the AST as JSON (vmlinux.h precompiled, so only the program's
   own declarations are dumped): doc comments, and the structs the export
   header declares. The raw lexer finds a doc comment at the top of the file.
3. Header structs the object's BTF lacks are compiled in a separate,
   BTF-only translation unit and appended to the object's BTF; the program's
   code, data and symbols are not touched.
4. The meta object comes from the object's ELF and BTF plus the doc comments.
5. With --btfgen, the object's minimal BTF for every kernel of a btfhub-style
   archive goes into the package (compiler/btfgen.py).

Everything that could differ between two builds of the same sources (paths,
temporary names, times) is kept out, so the output is byte-identical.
"""

from __future__ import annotations

import json
import os
import re
import sysconfig
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from ..errors import CompileError, PackageError, UsageError
from ..format.btf import Btf, Kind
from ..format.btfarchive import pack
from ..format.elf import ElfFile
from ..format.objspec import ObjectSpec
from ..format.package import Package, parse_meta
from . import advice, clangast, docs, exportchoice
from .btfgen import BtfgenResult, generate
from .btfmerge import merge_structs
from .clangrun import Job, log, parse_depfile
from .elfedit import replace_section
from .meta import compact_json, package_meta
from .toolchain import Toolchain, cached_header, check_libbpf_headers, precompiled_header, target_arch, vmlinux_header

DOC_COMMENT_OPENERS = (b"///", b"/**", b"/*!", b"//!")
FILE_DOC_MARKER = "__pyeunomia_file_doc"
EXPORT_MARKER = "__pyeunomia_export_"


@dataclass(frozen=True)
class BuildOptions:
    source: str
    header: str | None = None
    include_dirs: tuple[str, ...] = ()
    cflags: tuple[str, ...] = ()
    vmlinux: str | None = None
    arch: str | None = None
    btfhub_archive: str | None = None  # --btfgen: the archive whose kernels get minimal BTF


@dataclass(frozen=True)
class BuildResult:
    name: str
    object: bytes
    meta: dict[str, Any]
    warnings: str  # clang's diagnostics of a successful compile
    btfgen: BtfgenResult | None = None
    notes: tuple[str, ...] = ()  # choices ecc had to guess (compiler/exportchoice.py), one line each

    def package_json(self) -> str:
        return Package(self.object, parse_meta(self.meta, self.name), btf_archive=self.packed_archive).to_json()

    def plain_package_json(self) -> str:
        """The package without the archive: what upstream's tar holds beside it."""
        return Package(self.object, parse_meta(self.meta, self.name)).to_json()

    @cached_property
    def packed_archive(self) -> tuple[str, int] | None:
        """--btfgen's archive as package.json carries it (xz once: seconds for thousands of kernels)."""
        return pack(self.btfgen.archive) if self.btfgen is not None else None

    def skel_json(self) -> str:
        return compact_json(self.meta)


def package_name(source: str) -> str:
    """opensnoop.bpf.c -> opensnoop: the stem without .bpf, as an identifier."""
    stem = Path(source).name
    for suffix in (".c", ".bpf"):
        stem = stem.removesuffix(suffix)
    return re.sub(r"\W", "_", stem) or "prog"


# Longest first, so "-include-pch" is not taken for "-include" + "-pch".
PATH_FLAGS = ("-include-pch", "-idirafter", "-isystem", "-imacros", "-include", "-iquote", "-I")


def absolute_paths(cflags: list[str]) -> list[str]:
    """`cflags` with relative paths of include flags made absolute: clang runs
    in the source's directory, but the user wrote them relative to theirs."""
    out: list[str] = []
    expect_path = False
    for flag in cflags:
        if expect_path:
            out.append(os.path.abspath(flag))
            expect_path = False
            continue
        if flag in PATH_FLAGS:
            expect_path = True
            out.append(flag)
            continue
        joined = next((p for p in PATH_FLAGS if flag.startswith(p)), None)
        out.append(joined + os.path.abspath(flag[len(joined):]) if joined else flag)
    return out


def include_dirs_in(cflags: list[str]) -> list[str]:
    """The directories -I, -isystem and -idirafter add in `cflags`."""
    out = []
    for i, flag in enumerate(cflags):
        for prefix in ("-I", "-isystem", "-idirafter"):
            if flag == prefix and i + 1 < len(cflags):
                out.append(cflags[i + 1])
            elif flag.startswith(prefix) and len(flag) > len(prefix):
                out.append(flag[len(prefix):])
    return out


def _existing_file(path: str, what: str) -> Path:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such {what} file: check the path")
    if any(c in str(p.resolve()) for c in '"\n'):
        raise UsageError(f"{path}: a path with quotes or newlines cannot be #included: rename it")
    return p.resolve()


class _Build:
    def __init__(self, options: BuildOptions, tmp: Path):
        self.options = options
        self.tmp = tmp
        self.source = _existing_file(options.source, "source")
        self.header = _existing_file(options.header, "header") if options.header else None
        self.label = options.source
        for d in options.include_dirs:
            if not os.path.isdir(d):
                raise UsageError(f"-I {d}: no such directory")
        self.tools = Toolchain.find()
        self.cflags = absolute_paths(list(options.cflags))
        private = [self.tools.prefix.include] if self.tools.prefix is not None else []
        self.headers_dir = check_libbpf_headers([*options.include_dirs, *include_dirs_in(self.cflags), *private])
        self.arch = target_arch(options.arch)
        self.vmlinux = vmlinux_header(options.vmlinux, self.tools.bpftool)
        self.common = ["-target", "bpf", f"-D__TARGET_ARCH_{self.arch}"]
        self.includes = [f"-I{os.path.abspath(d)}" for d in options.include_dirs]
        self.includes += [f"-I{self.source.parent}", f"-I{self.vmlinux.parent}", *self.tools.include_flags]
        multiarch = sysconfig.get_config_var("MULTIARCH")
        if options.arch is None and multiarch and os.path.isdir(f"/usr/include/{multiarch}"):
            # <asm/...> for programs that include kernel UAPI headers instead of vmlinux.h
            self.includes.append(f"-idirafter/usr/include/{multiarch}")

    def _prefix_maps(self) -> list[str]:
        """Line info in .BTF.ext names source files: name them relative to the
        source's directory, so the output does not depend on where the sources
        live. clang runs in that directory, where these names resolve, because
        the BPF backend reads each line's text back from the (mapped) file."""
        here = str(self.source.parent)
        maps = {here: ".", str(self.vmlinux.parent): ".", str(self.tmp): "."}
        for d in [os.path.abspath(d) for d in self.options.include_dirs] + (
                [str(self.header.parent)] if self.header is not None else []):
            maps.setdefault(d, os.path.relpath(d, here))
        return [f"-fdebug-prefix-map={old}={new}" for old, new in sorted(maps.items())]

    def _clang(self, *args: str) -> Job:
        return Job([self.tools.clang, *args], cwd=str(self.source.parent))

    # -- steps -------------------------------------------------------------

    def start_compile(self) -> Job:
        obj, deps = self.tmp / "prog.o", self.tmp / "prog.d"
        return self._clang(*self.common, "-g", "-O2", *self.includes, *self._prefix_maps(),
                           *self.cflags, "-c", str(self.source), "-o", str(obj), "-MD", "-MF", str(deps))

    def finish_compile(self, job: Job) -> tuple[bytes, list[str], str]:
        obj, deps = self.tmp / "prog.o", self.tmp / "prog.d"
        searched = [str(self.source.parent), *self.options.include_dirs, str(self.vmlinux.parent),
                    *include_dirs_in(self.cflags)]  # where #include "vmlinux.h" is found, in clang's order
        how = advice.Build(self.tools, self.headers_dir, searched, self.options.vmlinux is None, str(self.source))
        done = job.wait()
        if done.returncode != 0:  # the toolchain's part first, when it has one
            raise advice.explain_failure(f"clang could not compile {self.label}", done.stderr, how)
        Job([self.tools.llvm_strip, "-g", str(obj)]).check(f"llvm-strip could not strip {self.label}'s object")
        return obj.read_bytes(), parse_depfile(deps.read_text("utf-8", "replace")), \
            advice.explain_warnings(done.stderr, how)

    def context(self, deps: list[str]) -> _Context:
        """What the compile's dependency list says about the source's includes."""
        used = [Path(d) for d in deps if os.path.isfile(d)]
        vmlinux = next((p for p in used if p.name == "vmlinux.h"), None)
        header = self.header
        included = header is not None and any(os.path.samefile(p, header) for p in used)
        return _Context(vmlinux.resolve() if vmlinux else None, header is not None and not included)

    def _unit(self, name: str, context: _Context, extra: list[str]) -> Path:
        """A generated translation unit: the source, then (unless the source
        includes it) the header, then `extra` lines."""
        lines = [f'#include "{self.source}"']
        if context.include_header:
            lines.append(f'#include "{self.header}"')
        path = self.tmp / name
        path.write_text("\n".join(lines + extra) + "\n")
        return path

    def start_ast(self, name: str, context: _Context, precompiled: bool = True) -> Job:
        """The JSON AST of the source (and header). With vmlinux.h precompiled,
        clang leaves its ~100k declarations out of the dump."""
        flags = [*self.common, "-O2", *self.cflags]
        pch = precompiled_header(self.tools.clang, cached_header(context.vmlinux), flags) \
            if precompiled and context.vmlinux is not None else None
        tu = self._unit(name, context, [])
        return self._clang(*(["-include-pch", str(pch)] if pch else []), *flags, *self.includes,
                           "-fsyntax-only", "-Xclang", "-ast-dump=json", str(tu))

    def declarations(self, job: Job) -> list[clangast.Decl] | None:
        done = job.wait()
        if done.returncode != 0:
            return None
        try:
            return clangast.top_level_decls(json.loads(done.stdout))
        except (ValueError, RecursionError) as e:
            raise CompileError(f"clang's AST dump of {self.label} is unreadable: {e}") from None

    def exact_declarations(self, context: _Context) -> list[clangast.Decl]:
        decls = self.declarations(self.start_ast("doc.c", context))
        if decls is None and context.vmlinux is not None:
            # A source unhappy with vmlinux.h parsed first: the slow, exact way.
            log.info("the AST dump with a precompiled vmlinux.h failed; dumping without it")
            job = self.start_ast("doc.c", context, precompiled=False)
            decls = self.declarations(job)
            if decls is None:
                raise CompileError(f"clang could not parse {self.label} for its doc comments:\n"
                                   f"{job.wait().stderr.rstrip()}")
        if decls is None:
            raise CompileError(f"clang could not parse {self.label} for its doc comments")
        return decls

    def start_tokens(self) -> Job:
        return Job([self.tools.clang, "-fsyntax-only", "-x", "c", "-Xclang", "-dump-raw-tokens", str(self.source)])

    def file_doc(self, tokens: Job) -> clangast.Node | None:
        """The doc comment at the very top of the source (before the first
        #directive), parsed by clang like any other doc comment."""
        done = tokens.wait()
        if done.returncode != 0:
            return None
        data = self.source.read_bytes()
        end = clangast.leading_comment_end(done.stderr, str(self.source), data)
        region = data[:end]
        if data[end : end + 1] != b"#" or not any(o in region for o in DOC_COMMENT_OPENERS):
            return None  # no doc comment, or it documents the declaration right below it
        tiny = self.tmp / "file_doc.c"
        tiny.write_bytes(region + f"\nint {FILE_DOC_MARKER};\n".encode())
        decls = self.declarations(Job([self.tools.clang, "-fsyntax-only", "-Xclang", "-ast-dump=json", str(tiny)]))
        return next((d.comment for d in decls or [] if d.name == FILE_DOC_MARKER), None)

    def header_structs(self, decls: list[clangast.Decl]) -> list[str]:
        """Named struct definitions in the header, in declaration order."""
        if self.header is None:
            return []
        in_header = clangast.SameFile(self.header)
        names: list[str] = []
        for d in decls:
            if d.kind == "RecordDecl" and d.tag == "struct" and d.complete and d.name and in_header(d.file):
                if d.name not in names:
                    names.append(d.name)
        return names

    def start_export(self, name: str, context: _Context, structs: list[str]) -> Job:
        """A translation unit that forces the header's structs into BTF with
        one pointer variable each; only its types are used, never its code."""
        tu = self._unit(name, context, [f"struct {n} *{EXPORT_MARKER}{i};" for i, n in enumerate(structs)])
        return self._clang(*self.common, "-g", "-O2", *self.includes, *self.cflags, "-c", str(tu),
                           "-o", str(tu.with_suffix(".o")))

    def export_btf(self, job: Job, name: str) -> Btf:
        job.check(f"clang could not compile the types of {self.options.header}")
        elf = ElfFile((self.tmp / name).with_suffix(".o").read_bytes())
        section = elf.section(".BTF")
        if section is None:
            raise CompileError("clang emitted no BTF for the export header: is this clang too old for BPF?")
        return Btf.parse(elf.section_bytes(section))

    def run(self) -> BuildResult:
        # Started together: the compile, and (guessing the source includes the
        # cached vmlinux.h) the AST dump and then the export unit. The guess is
        # checked against the compile's dependency list and redone if wrong.
        compile_job, tokens = self.start_compile(), self.start_tokens()
        guess = _Context(self.vmlinux.resolve(), self.header is not None)
        guessed_ast = self.start_ast("doc_guess.c", guess)
        running = [compile_job, tokens, guessed_ast]
        try:
            decls = self.declarations(guessed_ast)
            guessed_structs = self.header_structs(decls) if decls is not None else []
            guessed_export = None
            if guessed_structs:
                guessed_export = self.start_export("export_guess.c", guess, guessed_structs)
                running.append(guessed_export)
            obj, deps, warnings = self.finish_compile(compile_job)
        except BaseException:
            for job in running:
                job.cancel()  # no clang may keep writing into the directory about to go
            raise
        exact = self.context(deps)
        if decls is None or exact.vmlinux != guess.vmlinux:
            if guessed_export is not None:
                guessed_export.cancel()
            guessed_export = None
            decls = self.exact_declarations(exact)
        structs = self.header_structs(decls)
        if self.header is not None and not structs:
            raise CompileError(f"{self.options.header}: declares no named struct to export: "
                               "define the event struct there (struct event { ... };)")
        source_docs = docs.collect(decls, clangast.SameFile(self.source), self.file_doc(tokens), self.label)
        candidates, wanted, annotations = export_candidates(decls, structs, source_docs)
        obj = self.add_missing_structs(obj, wanted, exact, guessed_export if wanted == guessed_structs else None)
        name = package_name(self.options.source)
        try:
            spec = ObjectSpec(obj)
            choice = exportchoice.choose(spec, candidates, annotations, self.label)
            meta = package_meta(spec, f"{name}_bpf", exportchoice.ordered_exports(wanted, choice), source_docs)
            exportchoice.apply(meta, spec.btf, choice)
            Package(obj, parse_meta(meta, self.label), self.label).check_export_types()
        except PackageError as e:
            raise CompileError(f"{self.label}: the compiled object does not make a valid package: {e}") from None
        btfgen = None
        if self.options.btfhub_archive is not None:
            btfgen = generate(obj, self.options.btfhub_archive, self.arch)
        return BuildResult(name, obj, meta, warnings, btfgen, tuple(choice.notes))

    def add_missing_structs(self, obj: bytes, structs: list[str], exact: _Context, guessed: Job | None) -> bytes:
        """The object with the header structs its BTF lacks appended to it."""
        elf = ElfFile(obj)
        section = elf.section(".BTF")
        if section is None:
            raise CompileError(f"{self.label}: clang emitted no BTF: do the cflags drop -g?")
        blob = elf.section_bytes(section)
        have = Btf.parse(blob)
        missing = [n for n in structs if have.find(n, Kind.STRUCT) is None]
        if not missing:
            if guessed is not None:
                guessed.cancel()
            return obj
        source: Btf | None = None
        if guessed is not None and guessed.wait().returncode == 0:
            source = self.export_btf(guessed, "export_guess.c")
        if source is None:
            source = self.export_btf(self.start_export("export.c", exact, missing), "export.c")
        grown, copied = merge_structs(blob, elf.endian, source, missing, str(self.options.header))
        return replace_section(obj, ".BTF", grown) if copied else obj


def export_candidates(decls: list[clangast.Decl], header_structs: list[str], source_docs: docs.SourceDocs
                      ) -> tuple[list[str], list[str], dict[str, tuple[str, int]]]:
    """(candidate export structs, every struct the package exports, the maps'
    `/// @export STRUCT` annotations): see compiler/exportchoice.py."""
    annotations = exportchoice.map_annotations(source_docs)
    marked = exportchoice.annotated_structs(decls, lambda _file: True)
    candidates = header_structs + [n for n in marked if n not in header_structs]
    defined = {d.name for d in decls if d.kind == "RecordDecl" and d.tag == "struct" and d.complete}
    for var, (struct, line) in annotations.items():
        if struct not in defined:
            raise CompileError(f"{source_docs.file}:{line}: @export above '{var}' names struct {struct}, which the "
                               "source and its headers do not define: name the struct the map carries")
    wanted = candidates + list(dict.fromkeys(s for s, _ in annotations.values() if s not in candidates))
    return candidates, wanted, annotations


@dataclass(frozen=True)
class _Context:
    """What the generated units assume about the source's includes."""

    vmlinux: Path | None  # the vmlinux.h the source includes: precompiled for AST dumps
    include_header: bool  # the source does not include the header itself: the units do


def build(options: BuildOptions) -> BuildResult:
    """Compile `options.source` into a package; raises CompileError, UsageError
    or ToolMissingError with a one-line reason (plus clang's diagnostics)."""
    with tempfile.TemporaryDirectory(prefix="ecc-") as tmp:
        return _Build(options, Path(tmp)).run()
