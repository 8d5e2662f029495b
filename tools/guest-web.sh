#!/usr/bin/env bash
# The guest's web server and load generator for tests/tcp_listener/bench.sh: Debian bookworm's
# unmodified nginx (nginx-light) and wrk, with the libc they were built for, as a root tree on an
# ext4 image of its own, $CACHE/guest-web/web.img, which only that suite's boots attach (its
# vm.conf): the initramfs every boot unpacks stays small. The guest chroots into it.
# (The same steps as tools/guest-mesa.sh, with another package list.)
# The packages come through private apt lists and an empty dpkg status, so apt resolves the whole
# dependency closure as for an empty system and the host's apt and dpkg setup stay as they are.
# Idempotent: nothing is fetched or built again while the package list and the image are there.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

WEB_PACKAGES=(nginx-light wrk)
dir="$CACHE/guest-web"
img="$dir/web.img"
want="bookworm ${WEB_PACKAGES[*]} (with passwd)"
if [ -f "$img" ] && [ "$(cat "$dir/stamp" 2>/dev/null)" = "$want" ]; then
	exit 0
fi

log "guest-web: fetching ${WEB_PACKAGES[*]} and their dependencies for the guest"
apt_dir="$dir/apt"
rm -rf "$apt_dir" "$dir/root" "$img" "$dir/stamp"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$apt_dir/state"
: >"$apt_dir/state/status"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt_dir/sources.list" <<LIST
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm main
deb [signed-by=$keyring] http://deb.debian.org/debian bookworm-updates main
deb [signed-by=$keyring] http://deb.debian.org/debian-security bookworm-security main
LIST
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir" -o "Dir::State::status=$apt_dir/state/status"
	-o Debug::NoLocking=1 -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update -qq
apt-get "${apt_opts[@]}" install --download-only -y -qq --no-install-recommends "${WEB_PACKAGES[@]}" >/dev/null

root="$dir/root"
mkdir -p "$root"
for deb in "$apt_dir"/archives/*.deb; do
	dpkg-deb -x "$deb" "$root"
done
[ -x "$root/usr/sbin/nginx" ] && [ -x "$root/usr/bin/wrk" ] || die "guest-web: no nginx or wrk in the packages"
# The loader's cache, as ldconfig would make it on the guest; mount points for the chroot.
printf 'include /etc/ld.so.conf.d/*.conf\n' >"$root/etc/ld.so.conf"
ldconfig -r "$root"
mkdir -p "$root"/{dev,proc,sys,tmp,rust44,var/log/nginx,var/lib/nginx,run}
# No base-files in the closure: the users nginx looks up.
printf 'root:x:0:0:root:/root:/bin/sh\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\nwww-data:x:33:\n' >"$root/etc/group"
ls "$apt_dir"/archives/*.deb | sed 's,.*/,,' | tee "$dir/packages" >"$root/rust44-packages"
# 25% and 32 MiB over the tree's size for the file system's own blocks.
size_kb=$(du -sk "$root" | cut -f1)
mkfs.ext4 -q -F -L rust44web -d "$root" "$img.tmp" "$((size_kb * 5 / 4 / 1024 + 32))M" >/dev/null
mv "$img.tmp" "$img"
rm -rf "$apt_dir/archives" "$root"
echo "$want" >"$dir/stamp"
log "guest-web: $img, $(du -sm "$img" | cut -f1) MB, $(wc -l <"$dir/packages") packages"
