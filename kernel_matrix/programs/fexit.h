/* kernel_matrix: what fexit.bpf.c reports for each unlink. */
#ifndef KMX_FEXIT_H
#define KMX_FEXIT_H

struct unlink_event {
    unsigned int pid;
    int ret;
    char name[64];
};

#endif
