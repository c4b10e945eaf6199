/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __SOFTIRQS_H
#define __SOFTIRQS_H

#define MAX_SLOTS 20

struct softirq_stat {
	/// @column {"header": "COUNT", "width": 10}
	unsigned long long count;
	/// @column {"header": "TOTAL_usecs", "width": 12, "decoder": {"name": "duration", "unit": "ns", "show": "us"}}
	unsigned long long time; /* ns in the vector's handler */
};

struct hist {
	unsigned int slots[MAX_SLOTS];
};

#endif /* __SOFTIRQS_H */
