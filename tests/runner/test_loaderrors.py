"""The line of libbpf's log that says why a load failed (runner/loaderrors.py),
on logs as libbpf 1.1 writes them; tests/e2e/test_load_errors.py loads for real."""

from __future__ import annotations

from pyeunomia.format.objspec import MapSpec
from pyeunomia.runner.loaderrors import explained

MDFLUSH = """libbpf: prog 'md_flush_request': relo #4: patched insn #44 (ALU/ALU64) imm 12 -> 12
libbpf: prog 'md_flush_request': failed to find kernel BTF type ID of 'md_flush_request': -3
libbpf: prog 'md_flush_request': failed to prepare load attributes: -3
libbpf: prog 'md_flush_request': failed to load: -3
libbpf: failed to load object 'mdflush_bpf'
"""
MAP_ZERO = """libbpf: map 'counts': found max_entries = 0.
libbpf: Error in bpf_create_map_xattr(counts):Invalid argument(-22). Retrying without BTF.
libbpf: map 'counts': failed to create: Invalid argument(-22)
libbpf: failed to load object 'z'
"""
OTHER = """libbpf: prog 'p': found data map 0
libbpf: prog 'p': bad map relo against 'x' in section '.maps'
libbpf: prog 'p': failed to load: -22
libbpf: failed to load object 'o'
"""


def test_a_missing_attach_target_is_named():
    e = explained(MDFLUSH, "md_flush_request", 3)
    assert str(e).startswith("loading program 'md_flush_request' failed: libbpf: failed to find kernel BTF type "
                             "ID of 'md_flush_request': this kernel's BTF does not describe it")
    assert "No such process" not in str(e) and e.errno == 3


def test_a_map_the_kernel_would_not_create_is_named_with_its_fault():
    maps = [MapSpec("counts", 1, max_entries=0)]
    e = explained(MAP_ZERO, "", 22, maps)
    assert str(e) == ("creating map 'counts' failed: Invalid argument "
                      "(its max_entries is 0: a hash map needs at least 1)")
    ring = explained(MAP_ZERO, "", 22, [MapSpec("counts", 27, max_entries=5000)])
    assert "a ring buffer's max_entries (5000) must be a power of 2 and a multiple of 4096" in str(ring)
    assert str(explained(MAP_ZERO, "", 22)) == "creating map 'counts' failed: Invalid argument"
    newer = "libbpf: map 'counts': failed to create: -EINVAL\nlibbpf: failed to load object 'z'\n"  # libbpf 1.5
    assert str(explained(newer, "", 22, maps)).startswith("creating map 'counts' failed: -EINVAL (its max_entries is 0")


def test_a_ring_buffer_on_a_kernel_before_5_8_is_named_as_such(monkeypatch):
    """Before 5.8 the kernel refuses the map type itself with EINVAL: the
    line says so rather than leaving 'Invalid argument' to be guessed at."""
    from pyeunomia.kernel import features
    ring = [MapSpec("counts", 27, max_entries=1 << 20)]
    monkeypatch.setattr(features, "has_ringbuf", lambda: False)
    assert str(explained(MAP_ZERO, "", 22, ring)) == ("creating map 'counts' failed: Invalid argument (this kernel "
                                                      "has no ring buffer maps: Linux 5.8 brought them)")
    monkeypatch.setattr(features, "has_ringbuf", lambda: True)
    assert str(explained(MAP_ZERO, "", 22, ring)) == ("creating map 'counts' failed: Invalid argument "
                                                      "(ringbuf, max_entries 1048576)")


def test_otherwise_the_first_specific_line_about_the_program():
    e = explained(OTHER, "p", 22)
    assert str(e) == ("loading program 'p' failed: Invalid argument "
                      "(libbpf: prog 'p': bad map relo against 'x' in section '.maps')")
    assert str(explained("", "", 22)) == "loading the BPF object failed: Invalid argument"
    assert str(explained("libbpf: failed to load object 'o'\n", "", 7)).endswith(
        "(libbpf: failed to load object 'o')")
