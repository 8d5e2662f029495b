#!/usr/bin/env bash
# Guest userspace too large for the initramfs every boot unpacks, each on an ext4 image of its own
# that only the suites needing it attach (their vm.conf); the guest chroots into it.
#   tools/guest-image.sh NAME...      (make deps runs it for every NAME below)
#     mesa  $CACHE/guest-mesa/mesa.img: Debian bookworm's unmodified Mesa (EGL, GLES, the DRI drivers
#           with virtio_gpu_dri.so and the LLVM it needs, libglvnd, libgbm, libdrm) and eglinfo, for
#           tests/virtio_gpu3d (~250 MB)
#     web   $CACHE/guest-web/web.img: nginx (nginx-light) and wrk, for tests/tcp_listener/bench.sh
#     bpftrace  $CACHE/guest-bpftrace/bpftrace.img: bpftrace 0.17 (with the libbcc, libbpf, LLVM 14
#           and clang libraries it was built for), for tests/bpf_ext (~280 MB)
# Each holds the packages' whole dependency closure with the libc they were built for: apt resolves
# it through private lists against an empty dpkg status, so the host's apt and dpkg setup stay as
# they are. Idempotent: nothing is fetched or built again while the package list and image are there.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# The image's packages, the file that proves they unpacked, and what the tree needs besides.
spec() {
	case "$1" in
	mesa)
		packages=(libegl1 libegl-mesa0 libgles2 libgl1-mesa-dri libgbm1 libglvnd0 libdrm2 mesa-utils-bin)
		proof=usr/lib/x86_64-linux-gnu/dri/virtio_gpu_dri.so
		stamp_extra=""
		;;
	web)
		packages=(nginx-light wrk)
		proof=usr/sbin/nginx
		stamp_extra=" (with passwd)"
		;;
	bpftrace)
		packages=(bpftrace)
		proof=usr/bin/bpftrace
		stamp_extra=""
		;;
	*) die "guest-image: no image called '$1'" ;;
	esac
}

finish_tree() {
	local name=$1 root=$2
	mkdir -p "$root"/{dev,proc,sys,tmp,rust44}
	case "$name" in
	web)
		[ -x "$root/usr/bin/wrk" ] || die "guest-image: no wrk in the packages"
		mkdir -p "$root"/{var/log/nginx,var/lib/nginx,run}
		# No base-files in the closure: the users nginx looks up.
		printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n' >"$root/etc/passwd"
		printf 'root:x:0:\nwww-data:x:33:\n' >"$root/etc/group"
		;;
	esac
}

build_image() {
	local name=$1 dir="$CACHE/guest-$1" img="$CACHE/guest-$1/$1.img" want
	spec "$name"
	want="bookworm ${packages[*]}$stamp_extra"
	if [ -f "$img" ] && [ "$(cat "$dir/stamp" 2>/dev/null)" = "$want" ]; then
		return 0
	fi

	log "guest-image $name: fetching ${packages[*]} and their dependencies for the guest"
	local apt_dir="$dir/apt" root="$dir/root" keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	rm -rf "$apt_dir" "$root" "$img" "$dir/stamp"
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/state" "$root"
	: >"$apt_dir/state/status"
	cat >"$apt_dir/sources.list" <<LIST
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
LIST
	local apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
		-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o "Dir::State::status=$apt_dir/state/status"
		-o Debug::NoLocking=1 -o APT::Sandbox::User=root)
	apt-get "${apt_opts[@]}" update -qq
	apt-get "${apt_opts[@]}" install --download-only -y -qq --no-install-recommends "${packages[@]}" >/dev/null

	local deb
	for deb in "$apt_dir"/archives/*.deb; do
		dpkg-deb -x "$deb" "$root"
	done
	[ -e "$root/$proof" ] || die "guest-image $name: no /$proof in the packages"
	# The loader's cache, as ldconfig would make it on the guest.
	printf 'include /etc/ld.so.conf.d/*.conf\n' >"$root/etc/ld.so.conf"
	ldconfig -r "$root"
	finish_tree "$name" "$root"
	ls "$apt_dir"/archives/*.deb | sed 's,.*/,,' | tee "$dir/packages" >"$root/rust44-packages"
	# 25% and 32 MiB over the tree's size for the file system's own blocks.
	local size_kb
	size_kb=$(du -sk "$root" | cut -f1)
	mkfs.ext4 -q -F -L "rust44$name" -d "$root" "$img.tmp" "$((size_kb * 5 / 4 / 1024 + 32))M" >/dev/null
	mv "$img.tmp" "$img"
	rm -rf "$apt_dir/archives" "$root"
	echo "$want" >"$dir/stamp"
	log "guest-image $name: $img, $(du -sm "$img" | cut -f1) MB, $(wc -l <"$dir/packages") packages"
}

[ $# -gt 0 ] || die "usage: $0 NAME... (mesa, web, bpftrace)"
for name in "$@"; do
	build_image "$name"
done
