"""`make toolchain`: current libbpf headers and bpftool for ecc, beside the
system's, never instead of them.

Debian 12 ships libbpf-dev 1.1 and bpftool 7.1: programs written for current
libbpf (bpf_ksym_exists, BPF_UPROBE, kfuncs that bpftool 7.5 declares in
vmlinux.h) do not compile against them. bookworm-backports carries libbpf-dev
1.4 and bpftool 7.5. This fetches those two packages through apt with a
private sources list and private state folders (the system's sources, lists
and dpkg database are never touched: the mirror is read from the system's own
sources), so apt checks the suite's signed Release file and every package's
hash, and unpacks them with `dpkg-deb -x` into a private prefix:

    ROOT/libbpf-<version>_bpftool-<version>/usr/include/bpf/*.h
                                           /usr/sbin/bpftool
                                           /toolchain.json   (written last: the prefix is complete)

ROOT is /var/cache/pyeunomia/toolchain where it can be written (as root: one
copy for every checkout and venv on the machine, kept across `make clean`,
as the kernel matrix keeps its kernels), else $XDG_CACHE_HOME/pyeunomia/toolchain.
`--link PATH` points PATH (the venv's share/pyeunomia/toolchain, where ecc
looks) at the prefix. bpftool 7.5 links libbpf statically (its package
depends on libelf, zlib and libcap only); this checks that rather than assume
it, so the system's libbpf.so stays the only one anything loads.

A prefix already in ROOT is linked without asking the mirror (`--refresh`
asks for newer versions). Measured here: 1.3-2 s when fetching (360 KB of
indexes, 1.8 MB of packages), 0.05 s when the prefix exists.

    .venv/bin/python scripts/toolchain.py [--link PATH] [--root DIR] [--refresh]
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kernel_matrix.debian import Apt, system_mirror
from kernel_matrix.procs import CommandError, run

SUITE = "bookworm-backports"
# The oldest versions worth installing: what the programs of this decade need.
MINIMUM = {"libbpf-dev": (1, 4), "bpftool": (7, 5)}
KEEP = ("usr/include/bpf", "usr/sbin/bpftool")  # what ecc uses: not libbpf.a, the docs or the man pages
MANIFEST = "toolchain.json"
SYSTEM_ROOT = Path("/var/cache/pyeunomia/toolchain")


class Failed(Exception):
    """One line: what went wrong and what to do."""


def default_root() -> Path:
    """/var/cache/pyeunomia/toolchain when this user can write there, else the user's cache."""
    probe = SYSTEM_ROOT
    while not probe.exists():
        probe = probe.parent
    if os.access(probe, os.W_OK | os.X_OK):
        return SYSTEM_ROOT
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pyeunomia" / "toolchain"


def upstream(deb_version: str) -> tuple[int, ...]:
    """'1:1.4.6-1~bpo12+1' -> (1, 4, 6); '7.5.0+6.12.95-1~bpo12+1' -> (7, 5, 0)."""
    version = deb_version.split(":", 1)[-1]
    version = re.split(r"[-+~]", version, maxsplit=1)[0]
    return tuple(int(p) for p in re.findall(r"\d+", version))


def folder_name(versions: dict[str, str]) -> str:
    """The prefix's name: both Debian versions (epoch dropped), so a rebuilt package gets a new prefix."""
    lib = versions["libbpf-dev"].split(":", 1)[-1]
    tool = versions["bpftool"].split(":", 1)[-1]
    return re.sub(r"[^A-Za-z0-9.+~_-]", "_", f"libbpf-{lib}_bpftool-{tool}")


def parse_policy(text: str) -> dict[str, str]:
    """`apt-cache policy A B` -> {package: candidate version} (packages without one left out)."""
    found: dict[str, str] = {}
    package = ""
    for line in text.splitlines():
        if line and not line[0].isspace() and line.endswith(":"):
            package = line[:-1]
        elif line.strip().startswith("Candidate:"):
            candidate = line.split(":", 1)[1].strip()
            if candidate and candidate != "(none)":
                found[package] = candidate
    return found


def good_enough(versions: dict[str, str]) -> list[str]:
    """What falls short of MINIMUM, as phrases (empty when all is well)."""
    short = []
    for name, least in MINIMUM.items():
        have = versions.get(name)
        if have is None:
            short.append(f"{name} is not in {SUITE}")
        elif upstream(have)[: len(least)] < least:
            short.append(f"{name} {have} is older than {'.'.join(map(str, least))}")
    return short


def libbpf_version(include: Path, deb_version: str) -> str:
    """The package's upstream version, once libbpf_version.h (which states
    only MAJOR.MINOR) agrees with it."""
    text = (include / "bpf" / "libbpf_version.h").read_text()
    major = re.search(r"#define\s+LIBBPF_MAJOR_VERSION\s+(\d+)", text)
    minor = re.search(r"#define\s+LIBBPF_MINOR_VERSION\s+(\d+)", text)
    if not major or not minor:
        raise Failed(f"{include}/bpf/libbpf_version.h states no version: the package is not libbpf's headers")
    stated = (int(major.group(1)), int(minor.group(1)))
    packaged = upstream(deb_version)
    if packaged[:2] != stated:
        raise Failed(f"libbpf-dev {deb_version} holds headers of libbpf {stated[0]}.{stated[1]}: a broken package")
    return ".".join(map(str, packaged))


def check_bpftool(path: Path) -> str:
    """bpftool's own version line; refuses one that would load a libbpf.so
    (the system's 1.1 would then be what it runs with)."""
    needed = subprocess.run(["readelf", "-d", str(path)], capture_output=True, text=True, check=False).stdout
    libs = re.findall(r"\(NEEDED\)\s+Shared library: \[([^]]+)\]", needed)
    if any(lib.startswith("libbpf.so") for lib in libs):
        raise Failed(f"{path} links {', '.join(libs)} dynamically: this script expects bpftool's static libbpf")
    done = subprocess.run([str(path), "version"], capture_output=True, text=True, timeout=30, check=False)
    found = re.match(r"\S*bpftool v(\d+(?:\.\d+)*)\s", done.stdout)
    if done.returncode != 0 or not found:
        raise Failed(f"{path} does not run here: {done.stderr.strip() or done.stdout.strip() or 'no output'}")
    return found.group(1)


def complete_prefixes(root: Path) -> list[Path]:
    """Prefixes in ROOT whose manifest says they meet MINIMUM, newest first."""
    found = []
    for manifest in root.glob(f"*/{MANIFEST}"):
        try:
            packages = json.loads(manifest.read_text())["packages"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(packages, dict) and not good_enough(packages):
            found.append((upstream(packages["libbpf-dev"]), upstream(packages["bpftool"]), manifest.parent))
    return [p for *_, p in sorted(found, reverse=True)]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def install(apt: Apt, root: Path, versions: dict[str, str]) -> Path:
    """Download, unpack and check the packages; the prefix appears in one rename."""
    final = root / folder_name(versions)
    if (final / MANIFEST).is_file():
        return final
    work = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        debs, unpacked, prefix = work / "debs", work / "unpacked", work / "prefix"
        for d in (debs, unpacked, prefix):
            d.mkdir()
        # apt-get download checks each file against the hashes of the signed Release's indexes.
        run(["apt-get", "-q", *apt.options(), "download", *(f"{n}={v}" for n, v in sorted(versions.items()))],
            cwd=debs, quiet=True)
        files = sorted(debs.glob("*.deb"))
        if len(files) != len(versions):
            raise Failed(f"apt-get download gave {len(files)} packages for {len(versions)}")
        for deb in files:
            run(["dpkg-deb", "-x", str(deb), str(unpacked)], quiet=True)
        for keep in KEEP:
            (prefix / keep).parent.mkdir(parents=True, exist_ok=True)
            os.replace(unpacked / keep, prefix / keep)
        manifest = {
            "suite": SUITE,
            "packages": versions,
            "libbpf": libbpf_version(prefix / "usr" / "include", versions["libbpf-dev"]),
            "bpftool": check_bpftool(prefix / "usr" / "sbin" / "bpftool"),
            "sha256": {deb.name: sha256(deb) for deb in files},
        }
        (prefix / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        if final.exists():  # a prefix without its manifest: an install killed half-way by hand
            shutil.rmtree(final)
        os.rename(prefix, final)
        return final
    finally:
        shutil.rmtree(work, ignore_errors=True)


def link(prefix: Path, at: Path) -> None:
    """`at` -> `prefix`, replaced in one rename."""
    at.parent.mkdir(parents=True, exist_ok=True)
    if at.is_symlink() and os.readlink(at) == str(prefix):
        return
    tmp = at.with_name(f".tmp-{os.getpid()}-{at.name}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(prefix)
    os.replace(tmp, at)


def ensure(root: Path, refresh: bool = False) -> Path:
    """A complete prefix in `root` (fetched unless one is there), under a lock:
    several checkouts may run `make test` at once."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        have = complete_prefixes(root)
        if have and not refresh:
            return have[0]
        mirror = system_mirror()
        apt = Apt(root / "apt", mirror, [SUITE])
        try:
            # --error-on=any: a mirror that cannot be reached is an error, not a warning and stale lists
            run(["apt-get", "-q", "--error-on=any", *apt.options(), "update"], quiet=True)
            versions = parse_policy(run(["apt-cache", *apt.options(), "policy", *MINIMUM], capture=True))
        except CommandError as e:
            if have:
                print(f"toolchain: cannot ask the mirror ({e}); keeping {have[0].name}", file=sys.stderr)
                return have[0]
            raise Failed(f"cannot read {SUITE}'s package lists from {mirror} ({e}): check the network, or set "
                         "PYEUNOMIA_DEBIAN_MIRROR to a Debian mirror") from None
        short = good_enough(versions)
        if short and have:
            print(f"toolchain: {'; '.join(short)}; keeping {have[0].name}", file=sys.stderr)
            return have[0]
        if short:
            raise Failed(f"{'; '.join(short)}: ecc needs libbpf-dev 1.4+ and bpftool 7.5+")
        try:
            return install(apt, root, versions)
        except CommandError as e:
            raise Failed(f"cannot fetch {', '.join(sorted(versions))} from {SUITE}: {e}") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="toolchain", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, help=f"where prefixes are kept (default: {SYSTEM_ROOT}, else the user's "
                    "cache)")
    ap.add_argument("--link", type=Path, metavar="PATH", help="make PATH a symbolic link to the prefix")
    ap.add_argument("--refresh", action="store_true", help="ask the mirror for newer versions")
    args = ap.parse_args(argv)
    try:
        prefix = ensure(args.root or default_root(), args.refresh)
        if args.link:
            link(prefix, args.link)
    except (Failed, OSError) as e:
        print(f"toolchain: {e}", file=sys.stderr)
        return 1
    manifest = json.loads((prefix / MANIFEST).read_text())
    print(f"toolchain: libbpf headers {manifest['libbpf']} and bpftool {manifest['bpftool']} in {prefix}"
          + (f" (linked from {args.link})" if args.link else ""), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
