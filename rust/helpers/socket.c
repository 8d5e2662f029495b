// SPDX-License-Identifier: GPL-2.0

#include <net/sock.h>
#include <net/sock_reuseport.h>

/*
 * As setsockopt(SO_INCOMING_CPU): the socket's reuseport group, if it is in one, counts the
 * sockets that have a CPU, which is what makes its selection prefer them.
 */
__rust_helper void rust_helper_sk_set_incoming_cpu(struct sock *sk, int cpu)
{
	reuseport_update_incoming_cpu(sk, cpu);
}

/* As getsockopt(SO_INCOMING_CPU): the CPU that last received for the socket, or -1. */
__rust_helper int rust_helper_sk_incoming_cpu(const struct sock *sk)
{
	return READ_ONCE(sk->sk_incoming_cpu);
}

/* As setsockopt(SO_RCVTIMEO) and setsockopt(SO_SNDTIMEO), in jiffies. */
__rust_helper void rust_helper_sk_set_timeouts(struct sock *sk, long rcvtimeo, long sndtimeo)
{
	lock_sock(sk);
	WRITE_ONCE(sk->sk_rcvtimeo, rcvtimeo);
	WRITE_ONCE(sk->sk_sndtimeo, sndtimeo);
	release_sock(sk);
}
