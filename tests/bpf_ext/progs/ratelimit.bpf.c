// SPDX-License-Identifier: GPL-2.0
/*
 * A tc ingress program that rate-limits UDP to ports 40000..40999 per (source address,
 * destination port) with bpf_ext's kfunc: what the limiter's bucket refuses is dropped.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#define PORT_LO 40000
#define PORT_HI 40999

extern int rust44_ratelimit(__u64 key, __u32 cost) __ksym;

SEC("tcx/ingress")
int rl_ingress(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip;
	struct udphdr *udp;
	__u16 dport;

	if ((void *)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ip = (void *)(eth + 1);
	if ((void *)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
		return TC_ACT_OK;
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > end)
		return TC_ACT_OK;
	dport = bpf_ntohs(udp->dest);
	if (dport < PORT_LO || dport > PORT_HI)
		return TC_ACT_OK;
	return rust44_ratelimit((__u64)bpf_ntohl(ip->saddr) << 16 | dport, 1) ? TC_ACT_OK : TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "GPL";
