"""Debian's registry through apt with a private sources list.

The system's apt sources are never touched: a sources list of our own (signed
by Debian's archive keyring, pointing at the mirror the system already uses)
and our own lists and archive folders live in the cache. From there come the
kernels (one `linux-image-*-cloud-amd64` per suite) and, through mmdebstrap,
the guests' root.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .procs import run

KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SOURCES_DIRS = (Path("/etc/apt/sources.list.d"),)
SOURCES_LIST = Path("/etc/apt/sources.list")
ROOT_SUITE = "bookworm"


def sources_entries(name: str, text: str) -> list[tuple[str, list[str]]]:
    """(URI, suites) of every `deb` entry of a .list or deb822 .sources file."""
    entries: list[tuple[str, list[str]]] = []
    if name.endswith(".sources"):
        for stanza in re.split(r"\n\s*\n", text):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line or line[:1].isspace():
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes").lower() != "no":
                for uri in fields.get("uris", "").split():
                    entries.append((uri, fields.get("suites", "").split()))
    else:
        for line in text.splitlines():
            words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], [words[2]]))
    return entries


def find_mirror(files: Iterable[tuple[str, str]], suite: str = ROOT_SUITE) -> str | None:
    """The URI of the system's Debian source that serves `suite` itself (not
    its -security or -updates companions)."""
    for name, text in files:
        for uri, suites in sources_entries(name, text):
            if suite in suites:
                return uri.rstrip("/")
    return None


def system_mirror() -> str:
    override = os.environ.get("PYEUNOMIA_DEBIAN_MIRROR")
    if override:
        return override.rstrip("/")
    files = []
    for folder in SOURCES_DIRS:
        if folder.is_dir():
            files += [(p.name, p.read_text()) for p in sorted(folder.iterdir())
                      if p.suffix in (".list", ".sources") and p.is_file()]
    if SOURCES_LIST.is_file():
        files.append((SOURCES_LIST.name, SOURCES_LIST.read_text()))
    mirror = find_mirror(files)
    if mirror is None:
        raise SystemExit(f"no apt source for Debian {ROOT_SUITE} in {SOURCES_DIRS[0]} or {SOURCES_LIST}; "
                         "set PYEUNOMIA_DEBIAN_MIRROR to a Debian mirror URI")
    return mirror


def source_line(mirror: str, suite: str) -> str:
    return f"deb [signed-by={KEYRING}] {mirror} {suite} main"


def parse_depends_on(show: str, prefix: str) -> tuple[str, str] | None:
    """From `apt-cache show` of a kernel metapackage: the versioned image it
    depends on (name, version)."""
    for line in show.splitlines():
        if line.startswith("Depends:"):
            for dep in line[len("Depends:"):].split(","):
                m = re.match(r"\s*(\S+)\s*\(=\s*([^)\s]+)\)", dep)
                if m and m.group(1).startswith(prefix):
                    return m.group(1), m.group(2)
    return None


def parse_simulated(output: str) -> list[str]:
    """`apt-get -s install` output as sorted `name=version` lines."""
    found = set()
    for line in output.splitlines():
        m = re.match(r"Inst (\S+) \((\S+)", line)
        if m:
            found.add(f"{m.group(1)}={m.group(2)}")
    return sorted(found)


def essential_packages(packages_text: str) -> list[str]:
    """Names of the `Essential: yes` packages of a Packages index."""
    names = set()
    name = ""
    for line in packages_text.splitlines():
        if line.startswith("Package:"):
            name = line.split(":", 1)[1].strip()
        elif line.startswith("Essential:") and line.split(":", 1)[1].strip() == "yes":
            names.add(name)
    return sorted(names)


@dataclass(frozen=True)
class KernelPackage:
    name: str
    version: str

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9.+-]", "_", f"{self.name}_{self.version}")


class Apt:
    """apt-get and apt-cache on a private state folder."""

    def __init__(self, folder: Path, mirror: str, suites: Sequence[str]) -> None:
        self.dir = folder
        self.mirror = mirror
        for sub in ("lists/partial", "cache/archives/partial", "parts.d"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        self.sources = folder / "sources.list"
        self.root_sources = folder / "root.list"
        self._write(self.sources, "".join(source_line(mirror, s) + "\n" for s in sorted(set(suites))))
        self._write(self.root_sources, source_line(mirror, ROOT_SUITE) + "\n")

    @staticmethod
    def _write(path: Path, text: str) -> None:
        if not path.exists() or path.read_text() != text:
            path.write_text(text)

    def options(self, sources: Path | None = None) -> list[str]:
        d = self.dir
        settings = {
            "Dir::Etc::sourcelist": sources or self.sources,
            "Dir::Etc::sourceparts": d / "parts.d",
            "Dir::Etc::preferences": "/dev/null",
            "Dir::Etc::preferencesparts": d / "parts.d",
            "Dir::State::Lists": d / "lists",
            "Dir::State::status": "/dev/null",
            "Dir::Cache": d / "cache",
            "Dir::Cache::pkgcache": "",
            "Dir::Cache::srcpkgcache": "",
            "APT::Architecture": "amd64",
            "APT::Architectures": "amd64",
            "APT::Sandbox::User": "root",
            "Acquire::Languages": "none",
            "Debug::NoLocking": "1",
        }
        return [f"-o{k}={v}" for k, v in settings.items()]

    def update(self) -> None:
        run(["apt-get", "-q", *self.options(), "update"], quiet=True)

    def release_digest(self, suites: Iterable[str]) -> str:
        """A digest of the suites' Release files: unchanged means unchanged indexes."""
        h = hashlib.sha256()
        for suite in sorted(suites):
            for path in sorted((self.dir / "lists").glob(f"*_dists_{suite}_InRelease")):
                h.update(path.read_bytes())
        return h.hexdigest()

    def kernel_package(self, meta: str, suite: str) -> KernelPackage:
        out = run(["apt-cache", *self.options(), "show", f"{meta}/{suite}"], capture=True)
        found = parse_depends_on(out, "linux-image-")
        if found is None:
            raise SystemExit(f"{meta} in {suite} names no linux-image package")
        return KernelPackage(*found)

    def download(self, packages: Sequence[KernelPackage], dest: Path) -> list[Path]:
        run(["apt-get", "-q", *self.options(), "download", *(f"{p.name}={p.version}" for p in packages)],
            cwd=dest, quiet=True)
        return sorted(dest.glob("*.deb"))

    def root_versions(self, include: Sequence[str]) -> list[str]:
        """The exact `name=version` set a root with these packages (and every
        Essential one) would get, asked of apt without installing anything."""
        opts = self.options(self.root_sources)
        lists = sorted((self.dir / "lists").glob(f"*_dists_{ROOT_SUITE}_main_binary-amd64_Packages*"))
        text = "".join(run(["/usr/lib/apt/apt-helper", "cat-file", str(p)], capture=True) for p in lists)
        names = essential_packages(text) + list(include)
        out = run(["apt-get", *opts, "-s", "--no-install-recommends", "install", *names], capture=True)
        return parse_simulated(out)


# The project's Python dependencies (pyproject.toml's `dependencies`) and the Debian packages that
# bring them into the guest's root: nothing comes from PyPI (issue 13), so pyproject's lower bounds
# must be what bookworm ships, which python_deps_problems checks at every run.
PYTHON_DEPS = {"prometheus-client": "python3-prometheus-client", "pyyaml": "python3-yaml",
               "bcrypt": "python3-bcrypt"}
ROOT_INCLUDE = ("python3-minimal", "libpython3.11-stdlib", "libbpf1", "busybox-static", "mount", "usr-is-merged",
                *PYTHON_DEPS.values())
ROOT_EXCLUDE = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*",
                "/usr/share/lintian/*", "/usr/share/zoneinfo/*")
ROOT_RECIPE = 4  # bump when build_root changes what it makes from the same packages


def root_key(versions: Sequence[str]) -> str:
    h = hashlib.sha256(f"recipe {ROOT_RECIPE}\n{ROOT_INCLUDE}\n{ROOT_EXCLUDE}\n".encode())
    h.update("\n".join(versions).encode())
    return h.hexdigest()[:20]


def build_root(mirror: str, target: Path) -> None:
    """mmdebstrap's essential variant plus what the checks need; merged /usr
    without the usrmerge package (which would pull perl in)."""
    cmd = ["mmdebstrap", "--quiet", "--variant=essential", "--mode=root",
           "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", "--include=" + ",".join(ROOT_INCLUDE),
           "--aptopt=Acquire::Languages \"none\""]
    cmd += [f"--dpkgopt=path-exclude={p}" for p in ROOT_EXCLUDE]
    # Bytecode whose validity does not depend on file times, which an initramfs may not keep.
    cmd.append("--customize-hook=chroot \"$1\" python3 -m compileall -q -f --invalidation-mode unchecked-hash "
               "/usr/lib/python3.11 /usr/lib/python3/dist-packages >/dev/null")
    cmd += [ROOT_SUITE, str(target), source_line(mirror, ROOT_SUITE)]
    run(cmd, quiet=True, env={**os.environ, "TMPDIR": str(target.parent)})


def upstream_version(debian_version: str) -> tuple[int, ...]:
    """The numeric release of a Debian (or Python) version, trailing zeros
    dropped so that 6 and 6.0 compare equal: 1:0.16.0-0.1 -> (0, 16), 6.0-3+b2 -> (6,)."""
    upstream = debian_version.split(":", 1)[-1].rsplit("-", 1)[0] if "-" in debian_version else \
        debian_version.split(":", 1)[-1]
    release = re.match(r"[0-9]+(?:\.[0-9]+)*", upstream)
    numbers = [int(n) for n in release.group().split(".")] if release else []
    while numbers and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def python_deps_problems(requires: Iterable[str], versions: Iterable[str]) -> list[str]:
    """What of the wheel's Requires-Dist (`name>=X`) the root's packages
    (`name=version` lines) do not give, one line each: a dependency with no
    Debian package in PYTHON_DEPS, or a lower bound above bookworm's."""
    installed = dict(v.split("=", 1) for v in versions if "=" in v)
    problems = []
    for requirement in requires:
        m = re.fullmatch(r"([A-Za-z0-9._-]+)\s*(?:>=\s*([0-9.]+))?\s*", requirement.split(";", 1)[0])
        name = re.sub(r"[-_.]+", "-", m.group(1)).lower() if m else requirement
        package = PYTHON_DEPS.get(name)
        if m is None or package is None:
            problems.append(f"{requirement}: not a `name>=X` of a dependency in debian.PYTHON_DEPS")
        elif package not in installed:
            problems.append(f"{requirement}: {package} is not in the guest's root")
        elif m.group(2) and upstream_version(installed[package]) < upstream_version(m.group(2)):
            problems.append(f"{requirement}: {ROOT_SUITE} has {package} {installed[package]}")
    return problems


def unpack_deb(deb: Path, target: Path) -> None:
    target.mkdir(parents=True, exist_ok=True)
    run(["dpkg-deb", "-x", str(deb), str(target)])


def debs_named(folder: Path, name: str) -> Path:
    found = sorted(folder.glob(f"{name}_*.deb"))
    if not found:
        raise SystemExit(f"apt-get download left no {name}_*.deb in {folder}")
    return found[-1]


def tool_versions(*tools: str) -> str:
    """For cache keys: the installed versions of host tools that shape a build."""
    out = subprocess.run(["dpkg-query", "-W", *tools], capture_output=True, text=True, check=False)
    return out.stdout
