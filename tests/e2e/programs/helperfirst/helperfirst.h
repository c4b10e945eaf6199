/* In the style of bcc's libbpf-tools opensnoop.h: a helper struct (the
 * arguments kept between syscall entry and exit) is declared before the
 * event struct, so "the first struct of the header" is the wrong one. */
#ifndef HELPERFIRST_H
#define HELPERFIRST_H

#define NAME_LEN 64
#define TASK_COMM_LEN 16

struct args_t {
	const char *fname;
	int flags;
};

struct event {
	unsigned long long ts;
	int pid;
	int ret;
	int flags;
	char comm[TASK_COMM_LEN];
	char fname[NAME_LEN];
};

#endif
