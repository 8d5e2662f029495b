// SPDX-License-Identifier: GPL-2.0

#include <net/sock.h>

/* As setsockopt(SO_INCOMING_CPU) on a socket. */
__rust_helper void rust_helper_sk_set_incoming_cpu(struct sock *sk, int cpu)
{
	WRITE_ONCE(sk->sk_incoming_cpu, cpu);
}
