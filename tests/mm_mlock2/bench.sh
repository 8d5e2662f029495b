# mm_mlock2 benchmark (make bench): a sparse 1 GiB locked buffer, 1% touched, through
# /dev/lockedmem, mmap + mlock2(MLOCK_ONFAULT), mmap + mlock and memfd_secret in one boot.
# Prints a Markdown table on stdout.
cd /rust44/tests/mm_mlock2 || exit 1
modprobe mm_mlock2 || exit 1
./bench 1024 5
rc=$?
rmmod mm_mlock2
exit $rc
