// SPDX-License-Identifier: GPL-2.0
/*
 * A socket filter that limits each socket on its own: bpf_ext's kfunc keyed by the socket's
 * cookie (unique for the life of the kernel), so every socket the program is attached to gets a
 * bucket of its own.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int rust44_ratelimit(__u64 key, __u32 cost) __ksym;

SEC("socket")
int sf_cookie(struct __sk_buff *skb)
{
	return rust44_ratelimit(bpf_get_socket_cookie(skb), 1) ? skb->len : 0;
}

char LICENSE[] SEC("license") = "GPL";
