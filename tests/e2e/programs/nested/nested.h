#ifndef NESTED_H
#define NESTED_H

struct point {
	s32 x;
	s32 y;
};

struct inner {
	u16 codes[3];
	char tag[8];
	struct point where;
};

union pun {
	u32 whole;
	u8 parts[4];
};

struct event {
	u32 pid;
	struct point corners[2];
	struct inner detail;
	u64 grid[2][3];
	union pun word;
	char comm[16];
};

#endif
