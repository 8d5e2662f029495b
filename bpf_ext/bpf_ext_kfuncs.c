// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_ext's kfuncs: what BPF programs call. Only C units of a module get BTF, which the
 * verifier needs to type-check a kfunc call, so each kfunc is a C wrapper around the Rust code
 * in bpf_ext_main.rs.
 */
#include <linux/bpf.h>
#include <linux/btf.h>
#include <linux/btf_ids.h>
#include <linux/module.h>
#include <linux/timekeeping.h>

/* bpf_ext_main.rs: the token buckets, under their lock. */
bool rust44_bpf_ext_admit(u64 key, u32 cost, u64 now_ns);
/* Called from bpf_ext_main.rs. */
int rust44_bpf_ext_register_kfuncs(void);

__bpf_kfunc_start_defs();

/**
 * rust44_ratelimit - Charge @cost tokens to the token bucket of @key.
 * @key: what is limited: a flow, an address, a socket cookie...
 * @cost: tokens this packet takes (1 to count packets, its length to count bytes).
 *
 * The buckets live in the module: rate and burst are its parameters, its counters are in
 * /sys/kernel/debug/bpf_ext/stats.
 *
 * Return: 1 when the bucket had the tokens (pass the packet), 0 when not (drop it).
 */
__bpf_kfunc int rust44_ratelimit(u64 key, u32 cost)
{
	return rust44_bpf_ext_admit(key, cost, ktime_get_ns());
}

__bpf_kfunc_end_defs();

BTF_KFUNCS_START(rust44_bpf_ext_kfunc_ids)
BTF_ID_FLAGS(func, rust44_ratelimit)
BTF_KFUNCS_END(rust44_bpf_ext_kfunc_ids)

static const struct btf_kfunc_id_set rust44_bpf_ext_kfunc_set = {
	.owner = THIS_MODULE,
	.set = &rust44_bpf_ext_kfunc_ids,
};

/*
 * Called from the module's init. tc programs (SCHED_CLS) are the limiter's users; socket filters
 * may call it too, so that an unprivileged one shows the verifier's rule (kfunc calls need
 * CAP_BPF). A program that calls a kfunc holds the module (.owner), so it cannot be unloaded
 * under the program. There is no unregistering: the sets go with the module's BTF.
 */
int rust44_bpf_ext_register_kfuncs(void)
{
	int ret;

	ret = register_btf_kfunc_id_set(BPF_PROG_TYPE_SCHED_CLS, &rust44_bpf_ext_kfunc_set);
	if (ret)
		return ret;
	return register_btf_kfunc_id_set(BPF_PROG_TYPE_SOCKET_FILTER, &rust44_bpf_ext_kfunc_set);
}
