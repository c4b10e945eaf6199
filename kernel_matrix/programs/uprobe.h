/* kernel_matrix: what uprobe.bpf.c reports for each call of kmx_add(). */
#ifndef KMX_UPROBE_H
#define KMX_UPROBE_H

struct add_event {
    unsigned int pid;
    unsigned int exit; /* 0: entry (a, b), 1: return (ret) */
    int a;
    int b;
    int ret;
};

#endif
