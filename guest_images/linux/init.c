/*
 * xm-init: /init of the Linux test initramfs (static, musl, ppc64le).
 *
 * What it does, in order, printing one "xm-init: " line per step on the console:
 *   1. mounts /proc, /sys and devtmpfs on /dev (a failure is reported, not fatal);
 *   2. prints "xm-init: Linux <release> <machine>" from uname(2);
 *   3. forks a child pinned to CPU 1 with sched_setaffinity(2) that spins
 *      xm.spin=N iterations (default 2000000), reports the CPU it ran on, then
 *      ping-pongs one byte with the parent (pinned to CPU 0) through two pipes
 *      xm.pingpong=N times (default 100), so each CPU wakes the other and the
 *      XIVE IPI counters in /proc/interrupts move on both CPUs;
 *   4. copies /proc/interrupts and /proc/cpuinfo between marker lines;
 *   5. with "xm.poweroff" on the kernel command line: sync and power off;
 *      otherwise runs /bin/sh (busybox) on the console and powers off when it
 *      exits.  PID 1 never exits, so the kernel never panics because of it.
 *
 * Build: python -m ziglang cc -target powerpc64le-linux-musl -static -Os
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_SPIN 2000000UL
#define DEFAULT_PINGPONG 100UL
#define BUSY_CPU 1

static char cmdline[4096];

/* One line on the console, written with a single write(2) (no stdio buffering). */
static void say(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	memcpy(buf, "xm-init: ", 9);
	va_start(ap, fmt);
	n = vsnprintf(buf + 9, sizeof(buf) - 10, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if (n > (int)sizeof(buf) - 10)
		n = (int)sizeof(buf) - 10;
	n += 9;
	buf[n++] = '\n';
	(void)!write(STDOUT_FILENO, buf, (size_t)n);
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

static void mount_one(const char *source, const char *target, const char *fstype)
{
	if (mkdir(target, 0755) < 0 && errno != EEXIST)
		say("mkdir %s failed: %s", target, strerror(errno));
	if (mount(source, target, fstype, 0, NULL) < 0)
		say("mount %s on %s failed: %s", fstype, target, strerror(errno));
}

static void read_cmdline(void)
{
	int fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n;

	if (fd < 0) {
		say("cannot open /proc/cmdline: %s", strerror(errno));
		return;
	}
	n = read(fd, cmdline, sizeof(cmdline) - 1);
	close(fd);
	if (n < 0)
		n = 0;
	cmdline[n] = '\0';
	if (n > 0 && cmdline[n - 1] == '\n')
		cmdline[n - 1] = '\0';
}

/*
 * Find the word "name" or "name=value" on the command line.  Returns NULL if
 * absent, else a pointer to the value ("" for a bare word).
 */
static const char *cmdline_arg(const char *name)
{
	size_t len = strlen(name);
	const char *p = cmdline;

	while (*p) {
		while (*p == ' ')
			p++;
		if (strncmp(p, name, len) == 0 && (p[len] == ' ' || p[len] == '\0'))
			return "";
		if (strncmp(p, name, len) == 0 && p[len] == '=')
			return p + len + 1;
		while (*p && *p != ' ')
			p++;
	}
	return NULL;
}

static unsigned long cmdline_ulong(const char *name, unsigned long dflt)
{
	const char *v = cmdline_arg(name);
	char *end;
	unsigned long n;

	if (v == NULL || *v == '\0')
		return dflt;
	errno = 0;
	n = strtoul(v, &end, 0);
	if (errno != 0 || (*end != ' ' && *end != '\0')) {
		say("bad %s value, using %lu", name, dflt);
		return dflt;
	}
	return n;
}

static int pin_to_cpu(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static void unpin(void)
{
	cpu_set_t set;
	int i;

	CPU_ZERO(&set);
	for (i = 0; i < CPU_SETSIZE; i++)
		CPU_SET(i, &set);
	(void)sched_setaffinity(0, sizeof(set), &set);
}

/* Child side of the busy task: spin on CPU 1, report, then answer the parent's pings. */
static void busy_child(unsigned long spin, unsigned long rounds, int ping_rd, int pong_wr)
{
	volatile unsigned long counter = 0;
	unsigned long i;
	char c;

	if (pin_to_cpu(BUSY_CPU) < 0)
		say("sched_setaffinity(cpu %d) failed: %s", BUSY_CPU, strerror(errno));
	for (i = 0; i < spin; i++)
		counter++;
	say("busy task ran on cpu %d", sched_getcpu());
	for (i = 0; i < rounds; i++) {
		if (read(ping_rd, &c, 1) != 1 || write(pong_wr, &c, 1) != 1)
			break;
	}
	_exit(counter == spin ? 0 : 1);
}

static void busy_task(void)
{
	unsigned long spin = cmdline_ulong("xm.spin", DEFAULT_SPIN);
	unsigned long rounds = cmdline_ulong("xm.pingpong", DEFAULT_PINGPONG);
	int ping[2], pong[2];
	unsigned long i, done = 0;
	int status = 0, pinned;
	pid_t pid;
	char c = 'x';

	if (pipe(ping) < 0 || pipe(pong) < 0) {
		say("pipe failed: %s", strerror(errno));
		return;
	}
	say("busy task: %lu iterations pinned to cpu %d, then %lu ping-pongs", spin, BUSY_CPU, rounds);
	pid = fork();
	if (pid < 0) {
		say("fork failed: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		close(ping[1]);
		close(pong[0]);
		busy_child(spin, rounds, ping[0], pong[1]);
	}
	close(ping[0]);
	close(pong[1]);
	pinned = pin_to_cpu(0) == 0;
	for (i = 0; i < rounds; i++) {
		if (write(ping[1], &c, 1) != 1 || read(pong[0], &c, 1) != 1)
			break;
		done++;
	}
	if (pinned)
		unpin();
	close(ping[1]);
	close(pong[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	say("ping-pong: %lu of %lu round trips", done, rounds);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		say("busy task failed (wait status 0x%x)", status);
}

static void dump_file(const char *path)
{
	char buf[4096];
	ssize_t n;
	int fd;

	say("--- %s ---", path);
	fd = open(path, O_RDONLY);
	if (fd < 0) {
		say("cannot open %s: %s", path, strerror(errno));
	} else {
		while ((n = read(fd, buf, sizeof(buf))) > 0)
			write_all(STDOUT_FILENO, buf, (size_t)n);
		close(fd);
	}
	say("--- end %s ---", path);
}

static void __attribute__((noreturn)) power_off(void)
{
	say("powering off");
	sync();
	reboot(RB_POWER_OFF);
	say("reboot(RB_POWER_OFF) failed: %s", strerror(errno));
	for (;;)
		pause();
}

/* Run /bin/sh on the console, reaping every orphan until the shell itself exits. */
static void run_shell(void)
{
	static char *const argv[] = { "sh", NULL };
	static char *const envp[] = { "PATH=/bin:/sbin", "HOME=/", "TERM=vt100", "PS1=# ", NULL };
	pid_t pid, w;
	int status = 0;

	say("starting /bin/sh on the console; exit the shell to power off");
	pid = fork();
	if (pid < 0) {
		say("fork failed: %s", strerror(errno));
		return;
	}
	if (pid == 0) {
		setsid();
		(void)ioctl(STDIN_FILENO, TIOCSCTTY, 1);
		execve("/bin/sh", argv, envp);
		say("exec /bin/sh failed: %s", strerror(errno));
		_exit(127);
	}
	for (;;) {
		w = wait(&status);
		if (w == pid)
			break;
		if (w < 0 && errno != EINTR) {
			say("wait failed: %s", strerror(errno));
			break;
		}
	}
	say("shell exited (wait status 0x%x)", status);
}

int main(void)
{
	struct utsname u;

	mount_one("proc", "/proc", "proc");
	mount_one("sysfs", "/sys", "sysfs");
	mount_one("devtmpfs", "/dev", "devtmpfs");
	read_cmdline();

	if (uname(&u) < 0)
		say("uname failed: %s", strerror(errno));
	else
		say("Linux %s %s", u.release, u.machine);

	busy_task();
	dump_file("/proc/interrupts");
	dump_file("/proc/cpuinfo");

	if (cmdline_arg("xm.poweroff") == NULL)
		run_shell();
	power_off();
}
