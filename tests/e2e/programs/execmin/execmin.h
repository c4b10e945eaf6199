/* The event of execmin.bpf.c. */
#ifndef EXECMIN_H
#define EXECMIN_H

struct event {
	int pid;
	int ppid;
	char comm[16];
	char filename[127];
};

#endif
