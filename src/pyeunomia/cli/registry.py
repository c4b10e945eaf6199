"""`ecli push PACKAGE REF` and `ecli pull REF [-o FILE]`: packages in OCI registries (pyeunomia/oci/).

Only argparse here: the registry client (and the oras library) is imported when one of these runs."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import FetchError, UsageError
from ..format.escape import escape_text
from .common import seconds

REF_HELP = "host[:port]/repo[:tag] or host[:port]/repo@sha256:DIGEST (the host is required)"
AUTH_HELP = ("Credentials come from Docker's config file ($DOCKER_CONFIG/config.json, else ~/.docker/config.json, "
             "as 'docker login' writes them). https is the default; a loopback registry without TLS is reached "
             "over plain http.")


def registry_options(p: argparse.ArgumentParser, timeout: bool = True) -> None:
    """ORAS's spellings: --plain-http, --ca-file, --insecure (run has its own --insecure and --timeout)."""
    p.add_argument("--plain-http", action="store_true", help="talk to the registry over plain http (no TLS)")
    p.add_argument("--ca-file", metavar="PATH", help="verify the registry's TLS certificate with this CA bundle")
    if timeout:
        p.add_argument("-u", "--username", metavar="USER",
                       help="log in as USER with the password read from standard input (--password-stdin), "
                            "instead of Docker's config")
        p.add_argument("--password-stdin", action="store_true",
                       help="read the password for --username from standard input (its first line)")
        p.add_argument("--insecure", action="store_true", help="skip the registry's TLS certificate check")
        p.add_argument("--timeout", type=seconds, metavar="SECONDS", default=60.0,
                       help="give up the whole push or pull after this many seconds (default: 60)")


def registry_commands(sub: Any) -> None:
    push = sub.add_parser("push", help="push a package to an OCI registry", epilog=AUTH_HELP,
                          description="Push PACKAGE (a package.json, upstream's ecc -b tar or a .bpf.o; a built-in "
                                      "name such as 'opensnoop' too) to REF as a one-layer OCI artifact, and print "
                                      "REF@sha256:DIGEST, which 'ecli run' and 'ecli pull' take.")
    push.add_argument("source", metavar="PACKAGE", nargs="?")
    push.add_argument("ref", metavar="REF", help=REF_HELP)
    push.add_argument("-m", "--module", metavar="PACKAGE", help="the package, as upstream's ecli spells it "
                                                                "(ecli push -m package.json REF)")
    registry_options(push)
    pull = sub.add_parser("pull", help="pull a package from an OCI registry", epilog=AUTH_HELP,
                          description="Pull the package at REF, verify it against its manifest's digest (and the "
                                      "manifest against REF's digest), write it to FILE and print REF@sha256:DIGEST.")
    pull.add_argument("ref", metavar="REF", help=REF_HELP)
    pull.add_argument("-o", "--output", metavar="FILE",
                      help="where to write it ('-': standard output; default: the file name it was pushed with, "
                           "in the current directory)")
    registry_options(pull)


def main(args: argparse.Namespace) -> int:
    from .. import oci

    ref = oci.Reference.parse(args.ref)
    access = oci.Access(plain_http=args.plain_http, insecure=args.insecure, ca_file=args.ca_file,
                        timeout=args.timeout, credentials=_login(args))
    if args.command == "push":
        from ..source import open_package, read_package

        if (args.source is None) == (args.module is None):
            raise UsageError("name the package once: ecli push PACKAGE REF, or ecli push -m PACKAGE REF")
        data, name = read_package(args.source or args.module)
        open_package(data)  # refuse to publish what ecli run would refuse to read
        digest = oci.push(data, name, ref, access)
        sys.stdout.write(ref.with_digest(digest) + "\n")
        sys.stderr.write(f"ecli: pushed {escape_text(name)} ({len(data)} bytes) to {escape_text(str(ref))}\n")
        return 0
    pulled = oci.pull(ref, access)
    output = args.output or _safe_name(pulled.title)
    if output == "-":
        sys.stdout.buffer.write(pulled.data)
        sys.stdout.flush()
    else:
        try:
            with open(output, "wb") as f:
                f.write(pulled.data)
        except OSError as e:
            raise FetchError(f"{escape_text(output)}: cannot write: {e.strerror}") from None
        sys.stdout.write(ref.with_digest(pulled.manifest_digest) + "\n")
    sys.stderr.write(f"ecli: pulled {escape_text(str(ref))} ({len(pulled.data)} bytes, {pulled.blob_digest})"
                     f"{'' if output == '-' else ' to ' + escape_text(output)}\n")
    return 0


def _login(args: argparse.Namespace) -> tuple[str, str] | None:
    """--username with the password from standard input: never on the command line, where every user
    of the machine can read it (/proc/PID/cmdline)."""
    if args.username is None and not args.password_stdin:
        return None
    if args.username is None or not args.password_stdin:
        raise UsageError("--username and --password-stdin go together (the password is read from standard input)")
    password = sys.stdin.readline(4097).rstrip("\r\n")
    if not password:
        raise UsageError("--password-stdin: standard input held no password")
    return args.username, password


def _safe_name(title: str | None) -> str:
    """The pushed file's name as the default output, if it is a plain name: never a path a registry chose."""
    if title and os.path.basename(title) == title and not title.startswith(".") and title.isprintable():
        return title
    return "package.json"
