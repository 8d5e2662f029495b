# lightnvm: what run.sh (the tests) and bench.sh (the benchmark) share: the tools, dmsetup without
# udev, the NVMe namespaces by number, and the rust44-ftl target's status and capacity probe.
DMSETUP=/rust44/tests/raid5_journal/bin/dmsetup
FIO=/usr/bin/fio
BLKZONE=/usr/sbin/blkzone
BLKDISCARD=/usr/sbin/blkdiscard
export DM_DISABLE_UDEV=1

dm() {
	$DMSETUP --noudevsync "$@"
}

# ns_dev NSID: the block device of the NVMe namespace NSID.
ns_dev() {
	for ns in /sys/block/nvme*; do
		[ "$(cat "$ns/nsid" 2>/dev/null)" = "$1" ] && echo "/dev/${ns##*/}" && return 0
	done
	return 1
}

# ftl_field TABLE NAME: a key=value field of rust44-ftl table TABLE's status.
ftl_field() {
	dm status "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# ftl_capacity TABLE DEV [OPTS]: the FTL's capacity in sectors over DEV with these options, from a
# probe table named TABLE (which formats a blank device), removed again.
ftl_capacity() {
	local table=$1 dev=$2
	shift 2
	dm create "$table" --table "0 8 rust44-ftl $dev $*" || return 1
	ftl_field "$table" capacity
	dm remove "$table"
}
