# raid5_journal: Debian's dmsetup and mdadm for the guest (run on the host by tools/vm.sh with SRC,
# OUT = this suite's directory in the initramfs, ROOT = the initramfs tree).
# The packages are fetched once with 'apt-get download' from the host's configured apt sources (no
# install: mdadm's postinst would set up a monitor and an initramfs hook on the host), kept in
# $CACHE/guest-debs and unpacked there with dpkg-deb -x. The binaries go to OUT/bin; every library
# they load (libdevmapper from the unpacked package, the rest from the host, which is where the
# versions the host resolves for them come from) goes into ROOT at its host path, as tools/vm.sh
# does for tests/*/host-programs.
set -eu
CACHE=$(dirname "$SRC")
DEBS="$CACHE/guest-debs"
PKGS="dmsetup libdevmapper1.02.1 mdadm"
UNPACKED="$DEBS/root"

if [ ! -x "$UNPACKED/sbin/dmsetup" ] || [ ! -x "$UNPACKED/sbin/mdadm" ]; then
	rm -rf "$DEBS"
	mkdir -p "$DEBS/dl"
	# shellcheck disable=SC2086
	(cd "$DEBS/dl" && apt-get -q -o APT::Sandbox::User=root download $PKGS >/dev/null) || {
		echo "raid5_journal/build.sh: 'apt-get download $PKGS' failed (are the host's apt lists there? apt-get update)" >&2
		exit 1
	}
	mkdir -p "$UNPACKED.tmp"
	for deb in "$DEBS"/dl/*.deb; do
		dpkg-deb -x "$deb" "$UNPACKED.tmp"
	done
	mv "$UNPACKED.tmp" "$UNPACKED"
fi

mkdir -p "$OUT/bin"
for prog in dmsetup mdadm; do
	cp -L "$UNPACKED/sbin/$prog" "$OUT/bin/$prog"
	# The unpacked libdevmapper first: the host need not have it.
	for lib in $(LD_LIBRARY_PATH="$UNPACKED/lib/x86_64-linux-gnu" ldd "$UNPACKED/sbin/$prog" | grep -o '/[^ ]*'); do
		case "$lib" in "$UNPACKED"/*) dest=${lib#"$UNPACKED"} ;; *) dest=$lib ;; esac
		[ -e "$ROOT$dest" ] && continue
		mkdir -p "$ROOT$(dirname "$dest")"
		cp -L "$lib" "$ROOT$dest"
	done
done
