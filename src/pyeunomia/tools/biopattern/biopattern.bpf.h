/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __BIOPATTERN_H
#define __BIOPATTERN_H

/* Per disk: how its completed requests followed each other. */
struct counter {
	unsigned long long last_sector; /* where the last request ended: the next sequential one starts here */
	/// @column {"header": "RND", "width": 7}
	unsigned long long random;      /* requests that did not start where the one before ended */
	/// @column {"header": "SEQ", "width": 7}
	unsigned long long sequential;  /* requests that started where the one before ended */
	/// @column {"header": "COUNT", "width": 7}
	unsigned long long count;
	/// @column {"header": "BYTES", "width": 10, "decoder": "bytes"}
	unsigned long long bytes;
};

#endif /* __BIOPATTERN_H */
