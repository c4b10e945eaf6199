#ifndef HIST_H
#define HIST_H

#define MAX_SLOTS 26

struct hist {
	u32 slots[MAX_SLOTS];
	char comm[16];
};

#endif
