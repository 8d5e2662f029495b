/* SPDX-License-Identifier: GPL-2.0 */
/* rust44's kselftests share this (tools/vm.sh builds them with -I tests/lib). */
#ifndef RUST44_CHILD_H
#define RUST44_CHILD_H

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Runs @fn in a child (which may drop privileges) and returns its exit status, 128 + the signal
 * that ended it, or -1 when fork or wait failed.
 */
static inline int in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn(arg));
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

#endif
