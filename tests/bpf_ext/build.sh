#!/bin/sh
# Host-side build hook (tools/vm.sh runs it with SRC, the prepared kernel tree, and OUT, this
# suite's directory in the guest image): libbpf from the kernel tree (static, once per tree, next
# to it), bpfrl (the guest tool, src/bpfrl.c) linked with it, and the BPF programs (progs/*.bpf.c)
# built with clang-19 -target bpf against the tree's UAPI headers; the Rust tool
# tools/rust44-bpf (libbpf-rs over that libbpf, static), offline from the cargo cache 'make deps'
# filled.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache=$(dirname "$SRC")
hdr="$cache/uapi-headers"
lib="$cache/libbpf"
if [ ! -f "$hdr/stamp" ] || [ "$SRC/Makefile" -nt "$hdr/stamp" ]; then
	make -s -C "$SRC" O="$hdr/obj" ARCH=x86_64 headers_install INSTALL_HDR_PATH="$hdr" >&2
	touch "$hdr/stamp"
fi
if [ ! -f "$lib/stamp" ] || [ "$SRC/Makefile" -nt "$lib/stamp" ]; then
	rm -rf "$lib"
	mkdir -p "$lib"
	make -s -C "$SRC/tools/lib/bpf" OUTPUT="$lib/" BUILD_STATIC_ONLY=1 CC=gcc -j2 "$lib/libbpf.a" >&2
	make -s -C "$SRC/tools/lib/bpf" OUTPUT="$lib/" BUILD_STATIC_ONLY=1 CC=gcc \
		DESTDIR="$lib/dest" prefix=/ install_headers >&2
	touch "$lib/stamp"
fi
gcc -static -O2 -Wall -Werror -isystem "$hdr/include" -I"$lib/dest/include" \
	-o "$OUT/bpfrl" "$here/src/bpfrl.c" "$lib/libbpf.a" -lelf -lz
LIBBPF_SYS_LIBRARY_PATH="$lib:/usr/lib/x86_64-linux-gnu" RUSTFLAGS="-C target-feature=+crt-static" \
	cargo build -q --release --offline --locked --manifest-path "$here/../../tools/rust44-bpf/Cargo.toml" \
	--target-dir "$cache/rust44-bpf-target" >&2
cp "$cache/rust44-bpf-target/release/rust44-bpf" "$OUT/rust44-bpf"
# perf (the host's, Debian's linux-perf) and every library it loads on an ext4 image of their own,
# some 30 MB that only this suite's boots attach (vm.conf), not in the initramfs every boot unpacks.
perf_img="$cache/guest-perf/perf.img"
if [ ! -f "$perf_img" ] || [ /usr/bin/perf -nt "$perf_img" ]; then
	rm -rf "$cache/guest-perf"
	mkdir -p "$cache/guest-perf/root/usr/bin"
	cp -L /usr/bin/perf "$cache/guest-perf/root/usr/bin/perf"
	for l in $(ldd /usr/bin/perf | grep -o '/[^ ]*'); do
		mkdir -p "$cache/guest-perf/root$(dirname "$l")"
		cp -L "$l" "$cache/guest-perf/root$l"
	done
	/usr/sbin/mkfs.ext4 -q -L rust44perf -d "$cache/guest-perf/root" "$perf_img.tmp" 64M >&2
	mv "$perf_img.tmp" "$perf_img"
fi
# iproute2's ip for the veth test (busybox's ip has neither netns nor veth), as ip2 beside the
# suite's programs so that busybox's stays every other suite's ip; its libraries at host paths.
cp -L /bin/ip "$OUT/ip2"
for l in $(ldd /bin/ip | grep -o '/[^ ]*'); do
	[ -e "$ROOT$l" ] && continue
	mkdir -p "$ROOT$(dirname "$l")"
	cp -L "$l" "$ROOT$l"
done
mkdir -p "$OUT/progs"
for p in "$here"/progs/*.bpf.c; do
	clang-19 -target bpf -D__TARGET_ARCH_x86 -O2 -g -Wall -Werror -isystem "$hdr/include" -I"$lib/dest/include" \
		-c "$p" -o "$OUT/progs/$(basename "$p" .c).o"
done
