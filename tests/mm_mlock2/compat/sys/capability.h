/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The part of libcap's <sys/capability.h> that mlock-random-test uses (it drops every
 * capability), for building the upstream test without libcap: cap_init() is an empty set and
 * cap_set_proc() of it clears the effective, permitted and inheritable sets with capset(2).
 */
#ifndef RUST44_COMPAT_SYS_CAPABILITY_H
#define RUST44_COMPAT_SYS_CAPABILITY_H

#include <linux/capability.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef struct rust44_empty_caps { int unused; } *cap_t;

static inline cap_t cap_init(void)
{
	static struct rust44_empty_caps empty;

	return &empty;
}

static inline int cap_set_proc(cap_t caps)
{
	struct __user_cap_header_struct header = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3] = { 0 };

	(void)caps;
	return syscall(SYS_capset, &header, data);
}

static inline int cap_free(void *caps)
{
	(void)caps;
	return 0;
}

#endif
