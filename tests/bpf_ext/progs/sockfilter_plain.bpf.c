// SPDX-License-Identifier: GPL-2.0
/* The same socket filter without the kfunc call: it must load for nobody. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("socket")
int sf_plain(struct __sk_buff *skb)
{
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
