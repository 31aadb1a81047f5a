/* Seccomp probe for ruse's differential tests: runs inside a container and reports, one line
 * per argument, what the kernel (and the container's seccomp filter) did with one syscall.
 *
 * An argument is  [x86:|x32:]NR[,A0[,A1...]]  (numbers in C syntax, e.g. 0x10 or -1):
 *   native x86_64 (default), i386 through int $0x80, or x32 (NR | 0x40000000).
 * Each syscall runs in a thread of a forked child, so every outcome is observable:
 *   "<arg> ok"             the call succeeded (values differ between runtimes: pids, fds)
 *   "<arg> errno=N"        the call failed with errno N
 *   "<arg> trap=D"         SIGSYS from SECCOMP_RET_TRAP (D: the filter's data)
 *   "<arg> kill-thread"    the thread died, the process lived (SECCOMP_RET_KILL_THREAD)
 *   "<arg> kill-process=S" the whole process died by signal S (SECCOMP_RET_KILL_PROCESS)
 * With "-x ARG" as the last argument, that one syscall runs in the probe itself, so a kill
 * ends the container and shows in the runtime's exit status.
 * Built static (gcc -static) at test time; needs only fork, threads, wait4 and write.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct call {
	int abi; /* 0 native, 1 x86, 2 x32 */
	long nr;
	long args[6];
};

static volatile int trapped;
static volatile int trap_data;
static volatile int finished;
static long result;
static int result_errno;

static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	(void)sig;
	(void)ctx;
	trapped = 1;
	trap_data = si->si_errno;
}

static int parse(const char *s, struct call *c)
{
	memset(c, 0, sizeof(*c));
	if (strncmp(s, "x86:", 4) == 0) {
		c->abi = 1;
		s += 4;
	} else if (strncmp(s, "x32:", 4) == 0) {
		c->abi = 2;
		s += 4;
	}
	char *end;
	c->nr = strtol(s, &end, 0);
	for (int i = 0; i < 6 && *end == ','; i++)
		c->args[i] = (long)strtoull(end + 1, &end, 0);
	return *end == 0 ? 0 : -1;
}

static long do_call(const struct call *c)
{
	if (c->abi == 1) {
		/* i386 ABI: the sixth argument (ebp) is not used by the probes */
		long r;
		__asm__ volatile("int $0x80"
				 : "=a"(r)
				 : "a"(c->nr), "b"(c->args[0]), "c"(c->args[1]), "d"(c->args[2]),
				   "S"(c->args[3]), "D"(c->args[4])
				 : "memory");
		if (r < 0 && r > -4096) {
			errno = (int)-r;
			return -1;
		}
		return r;
	}
	long nr = c->abi == 2 ? (c->nr | 0x40000000L) : c->nr;
	return syscall(nr, c->args[0], c->args[1], c->args[2], c->args[3], c->args[4], c->args[5]);
}

static void *thread_main(void *arg)
{
	errno = 0;
	result = do_call(arg);
	result_errno = errno;
	finished = 1;
	return NULL;
}

static void report(const char *spec)
{
	char line[256];
	int n;
	if (trapped)
		n = snprintf(line, sizeof line, "%s trap=%d\n", spec, trap_data);
	else if (!finished)
		n = snprintf(line, sizeof line, "%s kill-thread\n", spec);
	else if (result == -1 && result_errno)
		n = snprintf(line, sizeof line, "%s errno=%d\n", spec, result_errno);
	else
		n = snprintf(line, sizeof line, "%s ok\n", spec);
	if (write(1, line, n) != n)
		_exit(3);
}

static void run_in_thread(const char *spec, struct call *c)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigaction(SIGSYS, &sa, NULL);
	pthread_t t;
	if (pthread_create(&t, NULL, thread_main, c) != 0)
		_exit(4);
	pthread_join(t, NULL);
	report(spec);
	_exit(0);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IONBF, 0);
	for (int i = 1; i < argc; i++) {
		struct call c;
		int direct = strcmp(argv[i], "-x") == 0 && i + 1 < argc;
		if (direct)
			i++;
		if (parse(argv[i], &c) != 0) {
			fprintf(stderr, "probe: bad argument %s\n", argv[i]);
			return 2;
		}
		if (direct) {
			errno = 0;
			result = do_call(&c);
			result_errno = errno;
			finished = 1;
			report(argv[i]);
			continue;
		}
		pid_t pid = fork();
		if (pid < 0) {
			perror("probe: fork");
			return 2;
		}
		if (pid == 0)
			run_in_thread(argv[i], &c);
		int st;
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFSIGNALED(st)) {
			char line[256];
			int n = snprintf(line, sizeof line, "%s kill-process=%d\n", argv[i],
					 WTERMSIG(st));
			if (write(1, line, n) != n)
				return 3;
		} else if (WEXITSTATUS(st) != 0) {
			fprintf(stderr, "probe: child for %s exited %d\n", argv[i], WEXITSTATUS(st));
			return 2;
		}
	}
	return 0;
}
