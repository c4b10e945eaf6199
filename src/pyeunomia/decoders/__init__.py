"""Value decoders: kernel numbers as the names people read (errno values,
open(2) flags, cgroup ids, ...). One registry serves tool output and the
exporter's labels alike, in the spirit of ebpf_exporter's decoders: one
decoder per module, listed in DECODERS below, no registration at import.

A config names decoders in a label's `decoders:` list, either as a bare name
(`errno`) or as a mapping with parameters (`{name: static_map, map: {...}}`).
Decoders run once per distinct value, never per event. Pure (cgroup reads
only /sys/fs/cgroup).
"""

from __future__ import annotations

from . import (
    bytesize,
    cgroup,
    container,
    dev,
    duration,
    errno,
    exit_status,
    inet,
    irq,
    kernel_enum,
    ksym,
    ktime,
    open_flags,
    port,
    result,
    signal,
    softirq,
    static_map,
    syscall,
    tcp_state,
    uid,
)
from .registry import Decode, DecoderType, sibling_params

DECODERS: dict[str, DecoderType] = {d.name: d for d in (
    errno.DECODER,
    result.DECODER,
    open_flags.DECODER,
    cgroup.DECODER,
    static_map.DECODER,
    signal.DECODER,
    syscall.DECODER,
    tcp_state.DECODER,
    inet.DECODER,
    port.DECODER,
    duration.DECODER,
    ktime.DECODER,
    bytesize.DECODER,
    ksym.DECODER,
    dev.DECODER,
    exit_status.DECODER,
    softirq.DECODER,
    irq.DECODER,
    uid.DECODER,
    *container.DECODERS,
    kernel_enum.DECODER,
)}

__all__ = ["DECODERS", "Decode", "DecoderType", "sibling_params"]
