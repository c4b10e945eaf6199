"""The exceptions pyeunomia raises.

Messages are one terse line: what is wrong, then (after ": ") what to do.
Only the command-line layer turns them into exit statuses.
"""

from __future__ import annotations


class EunomiaError(Exception):
    """Base of every error pyeunomia raises on purpose."""

    exit_status = 1


class UsageError(EunomiaError):
    """A command line or option value that cannot be used."""

    exit_status = 2


class PackageError(EunomiaError):
    """A package, object file or its embedded BTF is malformed."""


class StreamClosedError(EunomiaError):
    """A standard stream the command needs was closed when it started (`>&-`)."""

    def __init__(self, fd: int):
        name, hint = {0: ("input", "from a file or a pipe")}.get(fd, ("output" if fd == 1 else "error",
                                                                      "to a file or /dev/null"))
        super().__init__(f"standard {name} is closed: redirect it {hint}")
        self.fd = fd


class FetchError(EunomiaError):
    """A package could not be read from a path, standard input or URL."""


class ConfigError(EunomiaError):
    """An invalid exporter configuration."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, key: str = ""):
        where = file
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}" if where else key
        super().__init__(f"{where}: {message}" if where else message)
        self.file = file
        self.line = line
        self.key = key


class CompileError(EunomiaError):
    """The C compiler or a build step failed."""


class ToolMissingError(CompileError):
    """A build tool is not installed."""

    def __init__(self, tool: str, debian_package: str):
        super().__init__(
            f"{tool} not found: install it with 'apt-get install {debian_package}'"
        )
        self.tool = tool
        self.debian_package = debian_package


class ToolError(EunomiaError):
    """An outside program (bpftool) ran and failed."""


class KernelError(EunomiaError):
    """The kernel or libbpf refused an operation."""

    def __init__(self, message: str, errno: int = 0):
        super().__init__(message)
        self.errno = errno


class MissingPrivilegeError(KernelError):
    """The process lacks a capability it needs."""

    def __init__(self, capability: str, action: str, errno: int = 0):
        super().__init__(
            f"{action} needs {capability}: run as root, or grant {capability}", errno
        )
        self.capability = capability


class UnsupportedFeatureError(KernelError):
    """The running kernel lacks a feature the program needs."""

    def __init__(self, feature: str, detail: str = "", errno: int = 0):
        text = f"this kernel does not support {feature}"
        super().__init__(f"{text}: {detail}" if detail else text, errno)
        self.feature = feature


class VerifierError(KernelError):
    """The BPF verifier rejected a program; carries the verifier log."""

    TAIL_LINES = 8

    def __init__(self, program: str, log: str, errno: int = 0):
        self.program = program
        self.log = log
        tail = [line for line in log.strip().splitlines() if line.strip()][-self.TAIL_LINES :]
        summary = f"the verifier rejected program '{program}'"
        if tail:
            summary += " (log tail, see -v for all):\n  " + "\n  ".join(tail)
        super().__init__(summary, errno)


class AttachError(KernelError):
    """A program could not be attached."""

    def __init__(self, program: str, attach: str, reason: str, errno: int = 0):
        super().__init__(f"cannot attach program '{program}' ({attach}): {reason}", errno)
        self.program = program
        self.attach = attach
