/* spawnat PID PROGRAM [ARGS...]: runs PROGRAM as a child whose PID is PID
 * (clone3 with set_tid, which needs CAP_SYS_ADMIN), waits for it and exits
 * as it did. The child dies with spawnat (PR_SET_PDEATHSIG). Tests use it
 * to give a new process the PID of one that exited, without a race. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: spawnat PID PROGRAM [ARGS...]\n");
		return 2;
	}
	pid_t want = (pid_t)strtol(argv[1], NULL, 10);
	struct clone_args args;
	memset(&args, 0, sizeof args);
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)&want;
	args.set_tid_size = 1;
	long pid = syscall(SYS_clone3, &args, sizeof args);
	if (pid < 0) {
		fprintf(stderr, "spawnat: clone3 with pid %d: %s\n", want, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execv(argv[2], argv + 2);
		fprintf(stderr, "spawnat: exec %s: %s\n", argv[2], strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
