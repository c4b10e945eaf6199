"""The line ecc puts before clang's diagnostics when an old toolchain is the
cause, on diagnostics clang 14 printed for this project's programs."""

from __future__ import annotations

from pyeunomia.compiler import advice
from pyeunomia.compiler.advice import Used, explain, newer_than_headers, undeclared_kfuncs

# clang 14 on tests/e2e/programs/uprobes with Debian 12's libbpf-dev 1.1
UPROBE_ERRORS = """\
uprobes.bpf.c:34:30: error: expected identifier
int BPF_UPROBE(strtol_entry, const char *text, char **end, int base)
                             ^
uprobes.bpf.c:40:12: error: use of undeclared identifier 'base'; did you mean 'false'?
        e->base = base;
                  ^~~~
uprobes.bpf.c:47:32: error: expected identifier
int BPF_URETPROBE(strtol_exit, long ret)
                               ^
5 errors generated.
"""
# ... and on tests/e2e/programs/kfuncs, with a vmlinux.h from bpftool 7.1
KFUNC_ERRORS = """\
kfuncs.bpf.c:41:25: warning: implicit declaration of function 'bpf_ksym_exists' is invalid in C99 \
[-Wimplicit-function-declaration]
        e->has_task_from_pid = bpf_ksym_exists(bpf_task_from_pid);
                               ^
kfuncs.bpf.c:41:41: error: use of undeclared identifier 'bpf_task_from_pid'; did you mean 'bpf_sock_from_file'?
        e->has_task_from_pid = bpf_ksym_exists(bpf_task_from_pid);
                                               ^~~~~~~~~~~~~~~~~
kfuncs.bpf.c:46:11: warning: implicit declaration of function 'bpf_task_from_pid' is invalid in C99 \
[-Wimplicit-function-declaration]
                found = bpf_task_from_pid(old_pid);
                        ^
kfuncs.bpf.c:49:4: warning: implicit declaration of function 'bpf_task_release' is invalid in C99 \
[-Wimplicit-function-declaration]
                        bpf_task_release(found);
                        ^
4 warnings and 2 errors generated.
"""
# clang 16 and newer say it another way
CLANG16 = "x.bpf.c:9:11: error: call to undeclared function 'bpf_task_from_pid'; ISO C99 and later do not support " \
          "implicit function declarations [-Wimplicit-function-declaration]\n"
# bcc's libbpf-tools/gethostlatency.bpf.c: `int BPF_UPROBE(handle_entry)` is an old-style definition
# with 1.1's headers, and only its body fails
GETHOSTLATENCY_SOURCE = """
/* a comment naming bpf_for is no use of it */
SEC("uprobe")
int BPF_UPROBE(handle_entry)
{
	return probe_entry(ctx);
}
"""
GETHOSTLATENCY_ERRORS = """\
gethostlatency.bpf.c:66:21: error: use of undeclared identifier 'ctx'
gethostlatency.bpf.c:72:22: error: use of undeclared identifier 'ctx'
2 errors generated.
"""
OLD_VMLINUX = b"#ifndef __VMLINUX_H__\nstruct task_struct { int pid; };\n#endif\n"
NEW_VMLINUX = OLD_VMLINUX + b"#ifndef BPF_NO_KFUNC_PROTOTYPES\nextern void bpf_task_release(void *p) __weak __ksym;\n"
KERNEL_BTF = b"\x9f\xeb\x01\x00...\0bpf_task_from_pid\0bpf_task_release\0do_exit\0"


def used(headers=(1, 1), vmlinux=OLD_VMLINUX, bpftool="7.1.0", btf=KERNEL_BTF, source="") -> Used:
    return Used(headers, "/usr/include/bpf", vmlinux, bpftool, btf, advice.COMMENTS.sub(" ", source))


def test_macros_newer_than_the_headers_are_named_with_their_release():
    assert newer_than_headers(UPROBE_ERRORS, (1, 1)) == {(1, 2): ["BPF_UPROBE", "BPF_URETPROBE"]}
    assert newer_than_headers(UPROBE_ERRORS, (1, 2)) == {}
    assert newer_than_headers(UPROBE_ERRORS, None) == {(1, 2): ["BPF_UPROBE", "BPF_URETPROBE"]}  # pre-0.6 headers
    assert newer_than_headers("error: 'bpf_core_cast' and __arg_ctx", (1, 3)) == {
        (1, 4): ["bpf_core_cast", "__arg_ctx"]}
    # whole identifiers only: my_bpf_for is no bpf_for
    assert newer_than_headers("error: use of undeclared identifier 'my_bpf_for_x'", (1, 1)) == {}
    assert explain(UPROBE_ERRORS, used()) == (
        "BPF_UPROBE, BPF_URETPROBE need libbpf headers 1.2+ (these are 1.1, in /usr/include/bpf): "
        "run make toolchain (libbpf headers 1.4+, bpftool 7.5+)")


def test_kfuncs_that_vmlinux_h_does_not_declare():
    assert undeclared_kfuncs(KFUNC_ERRORS, used()) == ["bpf_task_from_pid", "bpf_task_release"]
    # an undeclared plain identifier is no call: a macro's parameter, say ('ctx' is in every kernel's BTF)
    assert undeclared_kfuncs(GETHOSTLATENCY_ERRORS, used(btf=KERNEL_BTF + b"ctx\0")) == []
    assert undeclared_kfuncs(CLANG16, used()) == ["bpf_task_from_pid"]
    # a vmlinux.h that declares kfuncs: the name is something else
    assert undeclared_kfuncs(KFUNC_ERRORS, used(vmlinux=NEW_VMLINUX)) == []
    # a name the kernel does not have is a typo, not a kfunc
    assert undeclared_kfuncs("error: use of undeclared identifier 'bpf_tsak_from_pid'", used()) == []
    assert explain(KFUNC_ERRORS, used()) == (
        "bpf_ksym_exists needs libbpf headers 1.2+ (these are 1.1, in /usr/include/bpf); vmlinux.h declares no "
        "kfuncs (bpf_task_from_pid, bpf_task_release?): bpftool 7.1.0 made it, 7.5+ declares them: "
        "run make toolchain (libbpf headers 1.4+, bpftool 7.5+)")


def test_macros_in_the_source_count_when_the_diagnostics_do_not_name_them():
    assert explain(GETHOSTLATENCY_ERRORS, used()) is None
    assert explain(GETHOSTLATENCY_ERRORS, used(source=GETHOSTLATENCY_SOURCE)) == (
        "BPF_UPROBE needs libbpf headers 1.2+ (these are 1.1, in /usr/include/bpf): "
        "run make toolchain (libbpf headers 1.4+, bpftool 7.5+)")  # not bpf_for: that was in a comment
    assert explain(GETHOSTLATENCY_ERRORS, used((1, 4), source=GETHOSTLATENCY_SOURCE)) is None


def test_current_tools_or_other_causes_get_no_toolchain_advice():
    # headers and bpftool current, and the kernel's BTF marks no kfuncs: declaring it is the way
    assert explain(CLANG16, used((1, 4), bpftool="7.5.0")) == (
        "bpf_task_from_pid: not declared, and vmlinux.h declares no kfuncs: declare it as `extern ... __ksym;`")
    assert explain(UPROBE_ERRORS, used((1, 4))) is None
    assert explain("x.bpf.c:3:1: error: unknown type name 'strcut'\n", used()) is None
    # a user's own vmlinux.h (no bpftool of ours made it): the same advice as for current tools
    assert explain(CLANG16, used((1, 4), bpftool="")).startswith("bpf_task_from_pid: not declared")


def test_the_table_is_sorted_and_has_no_duplicates():
    names = [n for group in advice.NEWER.values() for n in group]
    assert len(names) == len(set(names))
    assert list(advice.NEWER) == sorted(advice.NEWER)
