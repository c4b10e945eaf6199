/* What twins.bpf.c reports: who did what, and which twin saw it. */
#ifndef TWINS_H
#define TWINS_H

/* the twin that reported: tells which one the loader chose */
enum via { VIA_FENTRY = 0, VIA_KPROBE = 1, VIA_TRACEPOINT = 2, VIA_TP_BTF = 3, VIA_RAW_TP = 4 };

struct event {
	int pid;
	int via;
	int exit;       /* 1: unlinkat(2) returned (ret is set, name is not) */
	int ret;
	char name[64];  /* the path unlinkat(2) was given, or the task switched away from */
};

#endif
