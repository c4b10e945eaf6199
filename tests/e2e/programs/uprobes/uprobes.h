/* The event of uprobes.bpf.c: one per call of libc's strtol() and one per return. */
#ifndef UPROBES_H
#define UPROBES_H

struct event {
	int pid;
	int exit;        /* 0: the call (text, base), 1: the return (ret) */
	int base;
	int pad;
	long ret;
	char text[32];
};

#endif
