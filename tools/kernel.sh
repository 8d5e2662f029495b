#!/usr/bin/env bash
# Prepares the patched tree and builds the guest kernel with the C baselines and every rust44 module.
#   tools/kernel.sh [prepare|config|build]   (default: build, which does all three)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# The patches, in the order they apply: rust44's kernel-crate wiring, then the tree wiring.
patches() {
	ls "$TOP"/rust/patches/*.patch
	ls "$TOP"/tools/patches/*.patch
}

# Applies the patches once. When any of them changed, every applied one is reverted (last
# first) and the current set applied again, so patches touching the same file stay consistent.
apply_patches() {
	local applied="$SRC/.rust44-applied" p name current
	mkdir -p "$applied"
	# Trees prepared before the order was recorded had these two, in this order.
	if [ ! -f "$applied/order" ]; then
		for name in register.patch wire-rust44-in-tree.patch; do
			[ -f "$applied/$name" ] && echo "$name" >>"$applied/order"
		done
		touch "$applied/order"
	fi
	current=$(patches | while read -r p; do basename "$p"; done)
	if [ "$current" = "$(cat "$applied/order")" ]; then
		local same=1
		while read -r p; do
			cmp -s "$p" "$applied/$(basename "$p")" || same=0
		done < <(patches)
		[ $same -eq 1 ] && return 0
	fi
	tac "$applied/order" | while read -r name; do
		patch -s -d "$SRC" -p1 -R <"$applied/$name" || die "cannot revert the old $name"
		rm -f "$applied/$name"
	done
	: >"$applied/order"
	while read -r p; do
		name=$(basename "$p")
		patch -s -d "$SRC" -p1 --forward <"$p" || die "$name does not apply to $(cat "$CACHE/kernel.version")"
		cp "$p" "$applied/$name"
		echo "$name" >>"$applied/order"
	done < <(patches)
}

prepare() {
	[ -d "$SRC" ] || die "no kernel source in $SRC: run 'make deps'"
	# rust44's additions to the kernel crate; -c writes only changed files, so builds stay incremental.
	rsync -rc "$TOP/rust/kernel/" "$SRC/rust/kernel/"
	[ -d "$TOP/rust/helpers" ] && rsync -rc "$TOP/rust/helpers/" "$SRC/rust/helpers/"
	apply_patches
	# The project itself is drivers/rust44 of the tree.
	if [ "$(readlink "$SRC/drivers/rust44" 2>/dev/null)" != "$TOP" ]; then
		rm -f "$SRC/drivers/rust44"
		ln -s "$TOP" "$SRC/drivers/rust44"
	fi
}

fragments() {
	echo "$TOP/config/rust44.config"
	[ "$KERNEL" = debug ] && echo "$TOP/config/debug.config"
	return 0
}

config() {
	mkdir -p "$BUILD"
	local want stamp="$BUILD/.rust44-config"
	mapfile -t frags < <(fragments)
	want=$(cat "${frags[@]}" | sha256sum)
	if [ -f "$BUILD/.config" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
		return 0
	fi
	log "config: allnoconfig + ${frags[*]##*/}"
	(cd "$SRC" && ARCH=x86_64 LLVM=-19 scripts/kconfig/merge_config.sh -n -O "$BUILD" "${frags[@]}" >"$BUILD/merge.log" 2>&1) ||
		{ cat "$BUILD/merge.log"; die "merging the config fragments failed"; }
	"${KMAKE[@]}" -s olddefconfig
	# A missing toolchain piece silently drops CONFIG_RUST and with it every module: check each option.
	# Later fragments override earlier ones, as in the merge.
	local -A wanted=()
	local bad=0 line opt val got
	while IFS= read -r line; do
		case "$line" in CONFIG_*=*) wanted[${line%%=*}]=${line#*=} ;; esac
	done < <(cat "${frags[@]}")
	for opt in "${!wanted[@]}"; do
		val=${wanted[$opt]}
		got=$(grep "^$opt=" "$BUILD/.config" | cut -d= -f2- || true)
		if [ "$val" = n ]; then
			[ -z "$got" ] || { printf 'rust44: %s should be off, got %s\n' "$opt" "$got" >&2; bad=1; }
		elif [ "$got" != "$val" ]; then
			printf 'rust44: %s=%s wanted, got %s\n' "$opt" "$val" "${got:-unset}" >&2
			bad=1
		fi
	done
	if [ $bad = 1 ]; then
		"${KMAKE[@]}" -s rustavailable || true
		die "the kernel config does not have what config/*.config asks for"
	fi
	echo "$want" >"$stamp"
}

build() {
	local start=$SECONDS
	log "build: Linux $(cat "$CACHE/kernel.version") ($KERNEL) in $BUILD"
	# drivers/rust44 links to the checkout that built last, and make compares only mtimes: a file
	# edited here before another checkout's build would look up to date. Drop objects built from
	# another checkout.
	if [ "$(cat "$BUILD/.rust44-top" 2>/dev/null)" != "$TOP" ]; then
		rm -rf "$BUILD/drivers/rust44"
		echo "$TOP" >"$BUILD/.rust44-top"
	fi
	"${KMAKE[@]}" bzImage modules >"$BUILD/build.log" 2>&1 || { tail -n 60 "$BUILD/build.log"; die "kernel build failed (log: $BUILD/build.log)"; }
	rm -rf "$BUILD/staging"
	"${KMAKE[@]}" -s INSTALL_MOD_PATH="$BUILD/staging" INSTALL_MOD_STRIP=1 DEPMOD=/sbin/depmod modules_install >/dev/null
	log "build: done in $((SECONDS - start)) s"
}

# One build of a tree at a time: developers, helpers and CI share the cache.
mkdir -p "$CACHE"
exec 9>"$CACHE/build-$KERNEL.lock"
flock 9

case "${1:-build}" in
prepare) prepare ;;
config) prepare && config ;;
build) prepare && config && build ;;
*) die "usage: $0 [prepare|config|build]" ;;
esac
