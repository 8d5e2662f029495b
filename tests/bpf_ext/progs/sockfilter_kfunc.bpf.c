// SPDX-License-Identifier: GPL-2.0
/*
 * A socket filter that calls bpf_ext's kfunc: socket filters load without privileges (while
 * kernel.unprivileged_bpf_disabled is 0), kfunc calls need CAP_BPF: the verifier's rule.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

extern int rust44_ratelimit(__u64 key, __u32 cost) __ksym;

SEC("socket")
int sf_kfunc(struct __sk_buff *skb)
{
	/* Its own key, apart from the tc program's (address << 16 | port). */
	return rust44_ratelimit(1ULL << 63, 1) ? skb->len : 0;
}

char LICENSE[] SEC("license") = "GPL";
