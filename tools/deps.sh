#!/usr/bin/env bash
# Installs everything rust44 needs, idempotently; every artefact is cached in $RUST44_CACHE.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

# The kernel we build against. When this exact version has left the archive we take the newest 7.3.y.
KERNEL_PKG_VERSION=${KERNEL_PKG_VERSION:-7.3.4-1~bpo13+1}
BINDGEN_VERSION=${BINDGEN_VERSION:-0.73.2}

DEB_PACKAGES=(clang-19 lld-19 llvm-19 libclang-19-dev qemu-system-x86 bc flex bison libelf-dev libssl-dev
	cpio busybox-static ccache dwarves xz-utils zstd make gcc libc6-dev rsync kmod
	fio util-linux mount e2fsprogs linux-perf bpftool iproute2
	qemu-system-gui libvirglrenderer1 libegl-dev libgles-dev)

mkdir -p "$CACHE"
# The crates of the Rust BPF tool, which tests/bpf_ext/build.sh builds offline (cargo --offline).
cargo fetch --locked --quiet --manifest-path "$TOP/tools/rust44-bpf/Cargo.toml"
stamp="$CACHE/deps.stamp"
want="$KERNEL_PKG_VERSION $BINDGEN_VERSION ${DEB_PACKAGES[*]}"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -d "$SRC" ]; then
	"$TOP/tools/guest-image.sh" mesa web bpftrace
	log "deps: up to date ($(cat "$CACHE/kernel.version"))"
	exit 0
fi

missing=()
for p in "${DEB_PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "deps: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

rustup component list --installed 2>/dev/null | grep -q '^rust-src' || rustup component add rust-src
if ! command -v bindgen >/dev/null || [ "$(bindgen --version | awk '{print $2}')" != "$BINDGEN_VERSION" ]; then
	log "deps: cargo install bindgen-cli $BINDGEN_VERSION"
	cargo install --locked --quiet bindgen-cli --version "$BINDGEN_VERSION"
fi

# Kernel source from trixie-backports through private apt lists: the system's apt setup stays as it is.
if [ ! -d "$SRC" ]; then
	apt_dir="$CACHE/apt"
	mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
	cat >"$apt_dir/sources.list" <<SRC_LIST
deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie-backports main
SRC_LIST
	apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
	apt-get "${apt_opts[@]}" update -qq
	version=$KERNEL_PKG_VERSION
	if ! apt-cache "${apt_opts[@]}" show "linux-source-7.3=$version" >/dev/null 2>&1; then
		version=$(apt-cache "${apt_opts[@]}" madison linux-source-7.3 2>/dev/null | awk '{print $3}' | sort -V | tail -n1)
		[ -n "$version" ] || die "no linux-source-7.3 in trixie-backports: cannot build the kernel"
		warn "linux-source-7.3=$KERNEL_PKG_VERSION is gone from the archive; using $version instead"
	fi
	(cd "$apt_dir/archives" && apt-get "${apt_opts[@]}" download -qq "linux-source-7.3=$version")
	deb=$(ls "$apt_dir"/archives/linux-source-7.3_*.deb | head -n1)
	tmp=$(mktemp -d "$CACHE/unpack.XXXX")
	dpkg-deb -x "$deb" "$tmp"
	tarball=$(ls "$tmp"/usr/src/linux-source-7.3*.tar.* | head -n1)
	mkdir -p "$tmp/src"
	tar -xf "$tarball" -C "$tmp/src"
	mv "$tmp/src"/linux-source-7.3* "$SRC"
	rm -rf "$tmp"
	echo "$version" >"$CACHE/kernel.pkgversion"
	make -s -C "$SRC" kernelversion >"$CACHE/kernel.version"
fi

"$TOP/tools/guest-image.sh" mesa web bpftrace
echo "$want" >"$stamp"
log "deps: clang $(clang-19 --version | head -n1 | grep -o "version [0-9.]*" | cut -d" " -f2), rustc $(rustc --version | awk '{print $2}'),"\
" bindgen $(bindgen --version | awk '{print $2}'), qemu $(qemu-system-x86_64 --version | head -n1 | awk '{print $4}'),"\
" linux-source-7.3 $(cat "$CACHE/kernel.pkgversion") = Linux $(cat "$CACHE/kernel.version")"
