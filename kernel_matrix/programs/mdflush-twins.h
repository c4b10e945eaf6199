/* kernel_matrix: what mdflush-twins.bpf.c reports for each md flush. */
#ifndef KMX_MDFLUSH_TWINS_H
#define KMX_MDFLUSH_TWINS_H

struct flush_event {
    unsigned int pid;
    int via;  /* 0: the fentry twin reported it, 1: the kprobe twin */
    char comm[16];
};

#endif
