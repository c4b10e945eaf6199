/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
#ifndef __HARDIRQS_H
#define __HARDIRQS_H

#define IRQ_NAME_LEN 32
#define MAX_SLOTS 20

/* A handler's name, as /proc/interrupts lists it (a shared line has several). */
struct irq_key {
	char name[IRQ_NAME_LEN];
};

struct irq_stat {
	/// @column {"header": "COUNT", "width": 10}
	unsigned long long count;
	/// @column {"header": "TOTAL_usecs", "width": 12, "decoder": {"name": "duration", "unit": "ns", "show": "us"}}
	unsigned long long time; /* ns in the handler, 0 with -C */
};

struct hist {
	unsigned int slots[MAX_SLOTS];
};

#endif /* __HARDIRQS_H */
