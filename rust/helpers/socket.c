// SPDX-License-Identifier: GPL-2.0

#include <linux/nsproxy.h>
#include <net/sock.h>
#include <net/sock_reuseport.h>
#include <net/tcp.h>

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

__rust_helper void rust_helper_sk_callback_write_lock(struct sock *sk)
{
	write_lock_bh(&sk->sk_callback_lock);
}

__rust_helper void rust_helper_sk_callback_write_unlock(struct sock *sk)
{
	write_unlock_bh(&sk->sk_callback_lock);
}

__rust_helper void rust_helper_sk_callback_read_lock(struct sock *sk)
{
	read_lock_bh(&sk->sk_callback_lock);
}

__rust_helper void rust_helper_sk_callback_read_unlock(struct sock *sk)
{
	read_unlock_bh(&sk->sk_callback_lock);
}

/*
 * The owner's pointer, with SK_USER_DATA_NOCOPY: a connection accepted from a listener does not
 * inherit it (sk_clone_lock()). Under sk_callback_lock held for writing.
 */
__rust_helper void rust_helper_sk_user_data_set_nocopy(struct sock *sk, void *data)
{
	__rcu_assign_sk_user_data_with_flags(sk, data, data ? SK_USER_DATA_NOCOPY : 0);
}

/* The owner's pointer without its flags, or NULL. Under sk_callback_lock. */
__rust_helper void *rust_helper_sk_user_data_get(struct sock *sk)
{
	return (void *)((uintptr_t)rcu_dereference_raw(sk->sk_user_data) & SK_USER_DATA_PTRMASK);
}

/* What the static sock_def_wakeup() does: the default sk_state_change. */
__rust_helper void rust_helper_sk_wake_all(struct sock *sk)
{
	struct socket_wq *wq;

	rcu_read_lock();
	wq = rcu_dereference(sk->sk_wq);
	if (skwq_has_sleeper(wq))
		wake_up_interruptible_all(&wq->wait);
	rcu_read_unlock();
}

/* As __sk_stream_is_writeable(sk, 1), what sk_stream_write_space() wakes writers on. */
__rust_helper bool rust_helper_sk_stream_writeable(const struct sock *sk)
{
	return __sk_stream_is_writeable(sk, 1);
}

/*
 * As getsockopt(SO_KEEPALIVE), getsockopt(TCP_KEEPIDLE), getsockopt(TCP_KEEPINTVL) and
 * getsockopt(TCP_KEEPCNT) of a TCP socket, in seconds.
 */
__rust_helper bool rust_helper_tcp_sk_keepalive(struct sock *sk, u32 *idle, u32 *intvl, u32 *cnt)
{
	const struct tcp_sock *tp = tcp_sk(sk);

	*idle = keepalive_time_when(tp) / HZ;
	*intvl = keepalive_intvl_when(tp) / HZ;
	*cnt = keepalive_probes(tp);
	return sock_flag(sk, SOCK_KEEPOPEN);
}

__rust_helper struct net *rust_helper_sock_net(const struct sock *sk)
{
	return sock_net(sk);
}

__rust_helper struct net *rust_helper_get_net(struct net *net)
{
	return get_net(net);
}

__rust_helper void rust_helper_put_net(struct net *net)
{
	put_net(net);
}

/* The calling task's network namespace, referenced, or NULL once the task has none (exiting). */
__rust_helper struct net *rust_helper_current_net_get(void)
{
	struct nsproxy *nsproxy = current->nsproxy;

	return nsproxy ? get_net(nsproxy->net_ns) : NULL;
}
