/* The event of colmeta.bpf.c: its members' @column comments choose what the
 * table shows and through which decoder (docs/writing-tools.md). */
#ifndef COLMETA_H
#define COLMETA_H

#define KIND_KILL 1
#define KIND_CONNECT 2
#define KIND_EXIT 3

struct event {
	/// @column {"header": "EVENT", "width": 7, "left": true, "decoder": {"name": "static_map", "map": {"1": "kill", "2": "connect", "3": "exit"}}}
	__u32 kind;
	/// @column {"header": "PID", "width": 7}
	__u32 pid;
	/// @column {"header": "COMM", "width": 16}
	char comm[16];
	/// @column {"header": "SIG", "width": 8, "left": true, "decoder": "signal"}
	__s32 sig;
	/// @column {"header": "ERR", "width": 12, "left": true, "decoder": "errno"}
	__s32 err;
	/// The address connected to: IPv4 in the first 4 bytes, or IPv6
	/// @column {"header": "ADDR", "width": 15, "left": true, "decoder": {"name": "inet", "family": "af"}}
	__u8 addr[16];
	__u16 af;
	/// @column {"header": "PORT", "width": 5, "decoder": {"name": "port", "network": true}}
	__u16 port;
	/// @column {"header": "STATUS", "width": 18, "left": true, "decoder": "exit_status"}
	__s32 status;
	/// @column {"header": "LAT(ms)", "width": 8, "decoder": {"name": "duration", "unit": "ns", "show": "ms"}}
	__u64 lat_ns;
	/// @column {"header": "UID", "width": 8, "left": true, "extended": true, "decoder": "uid"}
	__u32 uid;
};

#endif
