/* The event of kfuncs.bpf.c: one per exec. */
#ifndef KFUNCS_H
#define KFUNCS_H

struct event {
	int pid;
	int kfunc_tgid;           /* bpf_task_from_pid(pid)->tgid, or -1 where the kernel lacks that kfunc */
	unsigned char has_task_from_pid;   /* bpf_ksym_exists(bpf_task_from_pid) */
	unsigned char has_missing_kfunc;   /* bpf_ksym_exists() of a kfunc no kernel has: 0 */
	unsigned char has_missing_var;     /* bpf_ksym_exists() of a __ksym variable no kernel has: 0 */
	unsigned char pad;
	unsigned long long do_exit_addr;  /* &do_exit, a typeless __ksym: its /proc/kallsyms address */
	char filename[128];
};

#endif
