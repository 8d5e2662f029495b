// SPDX-License-Identifier: GPL-2.0

#include <linux/sched/signal.h>

__rust_helper unsigned long rust_helper_rlimit(unsigned int limit)
{
	return rlimit(limit);
}
