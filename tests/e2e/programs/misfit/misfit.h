/* The struct misfit.bpf.c claims its ring buffer carries, and the one its
 * perf event array does carry. */
#ifndef MISFIT_H
#define MISFIT_H

struct event {
	int pid;
	int fd;
	unsigned long long count;
};

#endif
