#!/bin/sh
# virtio_gpu3d: host-side build hook (tools/vm.sh runs it with SRC, the prepared kernel tree, OUT,
# this suite's directory in the guest image, and ROOT, the image's tree).
# - src/*.c: raw-ioctl programs (the kselftest, the benchmark's), static, against the tree's
#   own UAPI headers (installed once next to it, as tests/mm_mlock2/build.sh does).
# - mesa/*.c: programs that run on Debian's Mesa inside the suite's Mesa image (the guest chroots
#   into it): linked against the host's libEGL/libGLESv2 of the same Debian release (libglvnd's
#   stable ABI), so they need only what the image has.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
hdr="$(dirname "$SRC")/uapi-headers"
if [ ! -f "$hdr/stamp" ] || [ "$SRC/Makefile" -nt "$hdr/stamp" ]; then
	make -s -C "$SRC" O="$hdr/obj" ARCH=x86_64 headers_install INSTALL_HDR_PATH="$hdr" >&2
	touch "$hdr/stamp"
fi
for prog in "$here"/src/*.c; do
	gcc -static -O2 -Wall -Werror -I"$here/src" -I"$SRC/tools/testing/selftests" -isystem "$hdr/include" \
		-o "$OUT/$(basename "$prog" .c)" "$prog"
done
for prog in "$here"/mesa/*.c; do
	[ -e "$prog" ] || continue
	gcc -O2 -Wall -Werror -o "$OUT/$(basename "$prog" .c)" "$prog" -lEGL -lGLESv2 -lm
done
