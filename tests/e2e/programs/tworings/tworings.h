/* Two ring buffers, each with its own struct; neither is named "event". */
#ifndef TWORINGS_H
#define TWORINGS_H

struct open_ev {
	int pid;
	int dfd;
	char fname[64];
};

struct close_ev {
	int pid;
	int fd;
	unsigned long long ts;
};

#endif
