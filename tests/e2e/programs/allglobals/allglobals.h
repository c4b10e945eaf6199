/* Event of allglobals.bpf.c: every scalar type, filled from the globals. */
#ifndef ALLGLOBALS_H
#define ALLGLOBALS_H

enum color {
	COLOR_RED = 1,
	COLOR_GREEN = 2,
	COLOR_BLUE = 300,
};

struct event {
	pid_t pid;
	u8 u8v;
	u16 u16v;
	u32 u32v;
	u64 u64v;
	s8 s8v;
	s16 s16v;
	s32 s32v;
	s64 s64v;
	bool flag;
	float f32;
	double f64;
	enum color color;
	char name[16];
	u32 data_word;
	u64 bss_word;
	__int128 s128;
	unsigned __int128 u128;
};

#endif
