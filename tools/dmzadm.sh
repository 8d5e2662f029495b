#!/usr/bin/env bash
# dm-zoned's formatter, dmzadm, for lightnvm's benchmark (tests/lightnvm/bench.sh): dm-zoned-tools
# is in Debian sid only, so its source package is fetched with private apt lists (deb-src of sid;
# the system's apt setup stays as it is) and built for this host, once, into $CACHE/dmzadm.
# Prints the binary's path.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

DMZ_VERSION=${DMZ_VERSION:-2.2.2}
out="$CACHE/dmzadm"
if [ -x "$out/dmzadm" ] && [ "$(cat "$out/version" 2>/dev/null)" = "$DMZ_VERSION" ]; then
	echo "$out/dmzadm"
	exit 0
fi

build_deps=(autoconf automake libtool pkg-config libblkid-dev libkmod-dev libudev-dev uuid-dev libdevmapper-dev)
missing=()
for p in "${build_deps[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	log "dmzadm: installing ${missing[*]}"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
fi

apt_dir="$CACHE/apt-sid-src"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" >"$apt_dir/sources.list"
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o APT::Get::List-Cleanup=0 -o APT::Sandbox::User=root)
tmp=$(mktemp -d "$CACHE/dmzadm-build.XXXX")
trap 'rm -rf "$tmp"' EXIT
apt-get "${apt_opts[@]}" update -qq
# Only the upstream tarball is needed (its hash is checked against the Sources index by apt); the
# Debian packaging files are not, and a mirror that lacks them must not stop the build.
(cd "$tmp" && apt-get "${apt_opts[@]}" source --download-only -qq "dm-zoned-tools=$DMZ_VERSION-1" >/dev/null 2>&1 || true)
tarball="$tmp/dm-zoned-tools_$DMZ_VERSION.orig.tar.xz"
[ -f "$tarball" ] || die "dmzadm: could not fetch dm-zoned-tools $DMZ_VERSION's source from sid"
tar -xf "$tarball" -C "$tmp"
log "dmzadm: building dm-zoned-tools $DMZ_VERSION"
(cd "$tmp/dm-zoned-tools-$DMZ_VERSION" && sh autogen.sh && ./configure -q && make -s -j"$(nproc)") >"$tmp/build.log" 2>&1 ||
	{ tail -n 20 "$tmp/build.log" >&2; die "dmzadm: the build failed"; }
mkdir -p "$out"
cp "$tmp/dm-zoned-tools-$DMZ_VERSION/src/dmzadm" "$out/dmzadm"
echo "$DMZ_VERSION" >"$out/version"
echo "$out/dmzadm"
