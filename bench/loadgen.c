/* The catalogue bench's load: N operations of one kind, each of which a tool
 * of that kind reports once (an exec, a kill, a connect, an O_DIRECT read...).
 * Prints the ns per operation. Runs as comm "pyeuload" (children exec
 * DIR/pyeuexec), so the tracers' lines about the load can be told from the
 * machine's own.
 *
 *   loadgen MODE N CPU [ARG]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t signals_seen;

static void on_usr1(int sig) { (void)sig; signals_seen++; }

static void *nothing(void *arg) { return arg; }

static void die(const char *what) { perror(what); exit(1); }

static void do_exec(long n, const char *exe) {
	for (long i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid < 0) die("fork");
		if (pid == 0) {
			char *argv[] = {(char *)exe, NULL};
			execv(exe, argv);
			_exit(127);
		}
		if (waitpid(pid, NULL, 0) < 0) die("waitpid");
	}
}

static void do_thread(long n) {
	for (long i = 0; i < n; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, nothing, NULL)) die("pthread_create");
		pthread_join(t, NULL);
	}
}

static void do_kill(long n) {
	struct sigaction sa = {.sa_handler = on_usr1};
	sigaction(SIGUSR1, &sa, NULL);
	pid_t self = getpid();
	for (long i = 0; i < n; i++)
		if (kill(self, SIGUSR1)) die("kill");
}

static void do_stat(long n, const char *path) {
	struct stat st;
	for (long i = 0; i < n; i++)
		if (stat(path, &st)) die("stat");
}

static void do_fsync(long n, const char *path) {
	int fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd < 0) die("open");
	for (long i = 0; i < n; i++)
		if (fdatasync(fd)) die("fdatasync");
	close(fd);
}

static void do_mount(long n, const char *dir) {
	for (long i = 0; i < n; i++) {
		if (mount("pyeuload", dir, "tmpfs", 0, "size=64k")) die("mount");
		if (umount(dir)) die("umount");
	}
}

static void do_connect(long n) {
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(addr);
	int one = 1;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 128) ||
	    getsockname(lfd, (struct sockaddr *)&addr, &len))
		die("listen");
	for (long i = 0; i < n; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0) die("socket");
		setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (connect(c, (struct sockaddr *)&addr, sizeof(addr))) die("connect");
		int a = accept(lfd, NULL, NULL);
		if (a < 0) die("accept");
		/* the connecting side closes first and lingers in TIME_WAIT: RST it away
		 * so 100,000 iterations do not run out of ports */
		struct linger lg = {.l_onoff = 1, .l_linger = 0};
		setsockopt(c, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		close(c);
		close(a);
	}
	close(lfd);
}

static void do_bind(long n) {
	for (long i = 0; i < n; i++) {
		struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0 || bind(s, (struct sockaddr *)&addr, sizeof(addr))) die("bind");
		close(s);
	}
}

static void do_dio(long n, const char *dev) {
	int fd = open(dev, O_RDONLY | O_DIRECT);
	if (fd < 0) die("open O_DIRECT");
	void *buf;
	if (posix_memalign(&buf, 4096, 4096)) die("posix_memalign");
	off_t size = lseek(fd, 0, SEEK_END);
	long blocks = size / 4096;
	if (blocks < 1) die("device too small");
	for (long i = 0; i < n; i++)
		if (pread(fd, buf, 4096, (off_t)(i % blocks) * 4096) != 4096) die("pread");
	close(fd);
}

static void do_switch(long n) {
	/* ping-pong through two pipes with a child: two context switches per round */
	int ab[2], ba[2];
	char c = 0;
	if (pipe(ab) || pipe(ba)) die("pipe");
	pid_t pid = fork();
	if (pid < 0) die("fork");
	if (pid == 0) {
		for (long i = 0; i < n; i++)
			if (read(ab[0], &c, 1) != 1 || write(ba[1], &c, 1) != 1) _exit(1);
		_exit(0);
	}
	for (long i = 0; i < n; i++)
		if (write(ab[1], &c, 1) != 1 || read(ba[0], &c, 1) != 1) die("ping-pong");
	waitpid(pid, NULL, 0);
}

static void do_syscall(long n) {
	for (long i = 0; i < n; i++)
		syscall(SYS_getppid);
}

/* A numeric host: getaddrinfo parses it without reading /etc/hosts or
 * nsswitch.conf, so its ~1 us does not vary by the +-4 us that a name
 * lookup's file reads do, and the probes' cost is what the runs differ by. */
static void do_resolve(long n) {
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_family = AF_INET, .ai_socktype = SOCK_STREAM};
	for (long i = 0; i < n; i++) {
		struct addrinfo *res = NULL;
		if (getaddrinfo("127.0.0.1", NULL, &hints, &res)) die("getaddrinfo");
		freeaddrinfo(res);
	}
}

int main(int argc, char **argv) {
	if (argc < 4) {
		fprintf(stderr, "usage: loadgen MODE N CPU [ARG]\n");
		return 2;
	}
	const char *mode = argv[1], *arg = argc > 4 ? argv[4] : "";
	long n = atol(argv[2]);
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(atoi(argv[3]), &set);
	sched_setaffinity(0, sizeof(set), &set);
	prctl(PR_SET_NAME, "pyeuload");
	struct timespec a, b;
	clock_gettime(CLOCK_MONOTONIC, &a);
	if (!strcmp(mode, "exec")) do_exec(n, arg);
	else if (!strcmp(mode, "thread")) do_thread(n);
	else if (!strcmp(mode, "kill")) do_kill(n);
	else if (!strcmp(mode, "stat")) do_stat(n, arg);
	else if (!strcmp(mode, "fsync")) do_fsync(n, arg);
	else if (!strcmp(mode, "mount")) do_mount(n, arg);
	else if (!strcmp(mode, "connect")) do_connect(n);
	else if (!strcmp(mode, "bind")) do_bind(n);
	else if (!strcmp(mode, "dio")) do_dio(n, arg);
	else if (!strcmp(mode, "switch")) do_switch(n);
	else if (!strcmp(mode, "syscall")) do_syscall(n);
	else if (!strcmp(mode, "resolve")) do_resolve(n);
	else {
		fprintf(stderr, "loadgen: unknown mode %s\n", mode);
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)n);
	return 0;
}
