/* SPDX-License-Identifier: GPL-2.0 */
#ifndef TCPKT_H
#define TCPKT_H

/* One IPv4 UDP packet a tc program saw. */
struct tc_event {
	unsigned int ifindex;
	unsigned int ingress_ifindex; /* 0 on egress of a locally sent packet */
	unsigned int len;
	unsigned short dport;
	unsigned char prog; /* 1: tc_one, 2: tc_two */
};

#endif
