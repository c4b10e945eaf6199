/* kernel_matrix: what ksyscall.bpf.c reports for each kill(2). */
#ifndef KMX_KSYSCALL_H
#define KMX_KSYSCALL_H

struct kill_event {
    unsigned int pid;
    unsigned int exit; /* 0: entry (tpid, sig), 1: return (ret) */
    int tpid;
    int sig;
    long long ret;
};

#endif
