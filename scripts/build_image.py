#!/usr/bin/env python3
"""Build the image deploy/daemonset.yaml runs, `localhost/pyeunomia:latest`,
from Debian's packages and this checkout, with no image registry: a Debian
bookworm root made by mmdebstrap (essential, python3-minimal,
libpython3.11-stdlib, libbpf1; no compiler, no kernel headers: packages
carry their objects and CO-RE relocates against the node's
/sys/kernel/btf), the project's PyPI dependencies and its wheel installed
into it with pip --target, imported with `podman import`.

    python3 scripts/build_image.py [--tag localhost/pyeunomia:latest] [--save image.tar]

Cached in /var/cache/pyeunomia/images (PYEUNOMIA_IMAGE_CACHE moves it): the
root keyed by the packages' versions (45 s and 92 MB to make here, once),
the Python layer by the source tree and the dependencies; an image already
imported under its key's tag is kept. `--save` writes it as an OCI archive
(`podman save`) for `ctr images import` or a registry.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("PYEUNOMIA_IMAGE_CACHE", "/var/cache/pyeunomia/images"))
SUITE = "bookworm"
INCLUDE = ("python3-minimal", "libpython3.11-stdlib", "libbpf1", "usr-is-merged")
EXCLUDE = ("/usr/share/man/*", "/usr/share/doc/*", "/usr/share/locale/*", "/usr/share/info/*")
SITE = "usr/local/lib/python3.11/dist-packages"  # Debian bookworm's python3 looks here
PIP_PLATFORM = ("--python-version", "3.11", "--implementation", "cp", "--only-binary=:all:",
                "--platform", "manylinux_2_28_x86_64", "--platform", "manylinux2014_x86_64")
RECIPE = 1  # bump when what is made from the same inputs changes


def run(argv: list[str], env: dict[str, str] | None = None) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, check=False, env=env)
    if out.returncode != 0:
        raise SystemExit(f"build_image: {' '.join(argv[:3])}...: exit {out.returncode}: {out.stderr.strip()[-800:]}")
    return out.stdout


def candidate_versions(packages: tuple[str, ...]) -> list[str]:
    """What apt would install now: the root's key (libc6 and base-files stand for the essential set)."""
    text = run(["apt-cache", "policy", *packages, "libc6", "base-files"])
    versions, name = [], ""
    for line in text.splitlines():
        if line and not line.startswith(" "):
            name = line.rstrip(":")
        elif line.strip().startswith("Candidate:"):
            versions.append(f"{name}={line.split(':', 1)[1].strip()}")
    return versions


def digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def tree_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for top in paths:
        files = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file())
        for p in files:
            if "__pycache__" in p.parts or p.suffix == ".pyc" or ".egg-info" in str(p):
                continue
            h.update(str(p.relative_to(REPO)).encode() + b"\0" + p.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def publish(made: Path, path: Path) -> Path:
    """Rename into place, and drop the older files of that kind."""
    made.replace(path)
    stem = path.name.split("-")[0]
    for old in path.parent.glob(f"{stem}-*{path.suffix}"):
        if old != path:
            old.unlink()
    return path


def base_tar(work: Path) -> Path:
    key = digest(f"recipe {RECIPE}", SUITE, *INCLUDE, *EXCLUDE, *candidate_versions(INCLUDE))
    path = CACHE / f"base-{key}.tar"
    if path.exists():
        return path
    print(f"build_image: the Debian root (mmdebstrap {SUITE}), key {key}", file=sys.stderr)
    cmd = ["mmdebstrap", "--quiet", "--variant=essential", "--mode=root",
           "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr", "--include=" + ",".join(INCLUDE),
           "--aptopt=Acquire::Languages \"none\"", *(f"--dpkgopt=path-exclude={p}" for p in EXCLUDE),
           SUITE, str(work / "base.tar")]
    run(cmd, env={**os.environ, "TMPDIR": str(work)})
    return publish(work / "base.tar", path)


def python_tar(work: Path) -> Path:
    """The dependencies and the wheel as a layer: SITE, and /usr/local/bin's scripts run by Debian's python3."""
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    key = digest(f"recipe {RECIPE}", *requires, *PIP_PLATFORM,
                 tree_digest([REPO / "pyproject.toml", REPO / "README.md", REPO / "src"]))
    path = CACHE / f"python-{key}.tar"
    if path.exists():
        return path
    print(f"build_image: the Python layer, key {key}", file=sys.stderr)
    copy = work / "src"  # building in the checkout would leave build/ and egg-info behind
    copy.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, copy / name)
    shutil.copytree(REPO / "src", copy / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "-w", str(work / "wheel"), str(copy)])
    wheel = next((work / "wheel").glob("*.whl"))
    target = work / "site"
    run([*pip, "install", "--no-compile", "--target", str(target), *PIP_PLATFORM, *requires, str(wheel)])
    run([sys.executable, "-m", "compileall", "-q", "-d", "/" + SITE, str(target)])
    with tarfile.open(work / "python.tar", "w") as tar:
        for i in range(1, len(SITE.split("/")) + 1):
            info = tarfile.TarInfo("/".join(SITE.split("/")[:i]))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for script in sorted((target / "bin").iterdir()):
            data = script.read_bytes()
            if data.startswith(b"#!"):
                data = b"#!/usr/bin/python3" + data[data.index(b"\n"):]
            info = tarfile.TarInfo(f"usr/local/bin/{script.name}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        shutil.rmtree(target / "bin")
        for entry in sorted(target.iterdir()):
            tar.add(entry, arcname=f"{SITE}/{entry.name}", filter=_owned_by_root)
    return publish(work / "python.tar", path)


def _owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def build(tag: str) -> str:
    """Make (or find) the image; tag it `tag` too. Its name with the key's tag."""
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHE, prefix="work-") as tmp:
        work = Path(tmp)
        base, layer = base_tar(work), python_tar(work)
        name = f"{tag.rsplit(':', 1)[0]}:{base.stem.split('-')[1]}-{layer.stem.split('-')[1]}"
        if subprocess.run(["podman", "image", "exists", name], check=False).returncode != 0:
            combined = work / "image.tar"
            shutil.copy(base, combined)
            with tarfile.open(combined, "a") as tar, tarfile.open(layer) as extra:
                names = tar.getnames()
                prefix = "./" if names and names[0].startswith(".") else ""  # mmdebstrap writes ./usr/...
                present = {n.removeprefix("./").rstrip("/") for n in names}
                for info in extra.getmembers():
                    if info.isdir() and info.name in present:
                        continue  # a path twice is refused by podman import
                    data = extra.extractfile(info) if info.isfile() else None
                    info.name = prefix + info.name
                    tar.addfile(info, data)
            run(["podman", "import", "-q", "--change", 'CMD ["eunomia-exporter", "--help"]', str(combined), name])
    run(["podman", "tag", name, tag])
    return name


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tag", default="localhost/pyeunomia:latest")
    parser.add_argument("--save", type=Path, help="also write the image as an OCI archive")
    args = parser.parse_args()
    name = build(args.tag)
    if args.save:
        run(["podman", "save", "-q", "--format", "oci-archive", "-o", str(args.save), args.tag])
    print(name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
