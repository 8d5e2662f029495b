# lightnvm: dm-zoned's dmzadm for the benchmark (bench.sh), built by tools/dmzadm.sh from sid's
# source (cached), with the libraries it loads at their host paths in ROOT (as tools/vm.sh does for
# host-programs). Best effort: the tests do not need it, and bench.sh says so when it is missing.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
if ! DMZADM=$(RUST44_CACHE=$(dirname "$SRC") bash "$HERE/../../tools/dmzadm.sh"); then
	echo "lightnvm/build.sh: no dmzadm (tools/dmzadm.sh failed): the dm-zoned benchmark cannot run" >&2
	exit 0
fi
mkdir -p "$OUT/bin"
cp "$DMZADM" "$OUT/bin/dmzadm"
for lib in $(ldd "$DMZADM" | grep -o '/[^ ]*'); do
	[ -e "$ROOT$lib" ] && continue
	mkdir -p "$ROOT$(dirname "$lib")"
	cp -L "$lib" "$ROOT$lib"
done
