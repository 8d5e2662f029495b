#!/usr/bin/env bash
# rust44's kernel-crate additions as a patch series a maintainer can review.
#
# The sources of truth are rust/kernel/** and rust/helpers/** (new files, copied into the tree) and
# rust/patches/NNNN-*.patch (changes to upstream files, one concern each, applied in order).
#   tools/series.sh edit DIR     a git work tree of the pristine kernel's rust/ with one commit per
#                                patch: change upstream files there with git (commit, rebase -i)...
#   tools/series.sh export DIR   ...then write its commits back to rust/patches/
#   tools/series.sh review OUT   the whole series, each patch with the new files of its concern
#                                (listed in its 'New-files:' trailer), into OUT; run checkpatch on it
#   tools/series.sh check        review into a scratch directory, then scripts/checkpatch.pl over it
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PRISTINE="$CACHE/pristine-$(cat "$CACHE/kernel.pkgversion" 2>/dev/null || echo unknown)"

# The upstream rust/ and checkpatch of the packaged kernel, unpatched, extracted once.
pristine() {
	[ -d "$PRISTINE/rust" ] && return 0
	local deb tmp
	deb=$(ls "$CACHE"/apt/archives/linux-source-7.3_*.deb 2>/dev/null | head -n1)
	[ -n "$deb" ] || die "no linux-source-7.3 package in $CACHE/apt: run 'make deps'"
	tmp=$(mktemp -d "$CACHE/pristine.XXXX")
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp" --wildcards './usr/src/linux-source-7.3.tar.*'
	tar -xf "$tmp"/usr/src/linux-source-7.3.tar.* -C "$tmp" --strip-components=1 --wildcards \
		'linux-source-7.3/rust/*' 'linux-source-7.3/scripts/checkpatch.pl' \
		'linux-source-7.3/scripts/spelling.txt' 'linux-source-7.3/scripts/const_structs.checkpatch'
	rm -rf "$tmp/usr"
	mv "$tmp" "$PRISTINE"
}

# worktree DIR: pristine rust/ in a fresh git repository, tagged 'pristine'.
worktree() {
	local dir=$1
	[ -e "$dir" ] && die "$dir exists"
	pristine
	mkdir -p "$dir"
	cp -r "$PRISTINE/rust" "$dir/rust"
	git -C "$dir" init -q
	git -C "$dir" add -A
	git -C "$dir" -c user.name=rust44 -c user.email=rust44@localhost commit -q -m pristine
	git -C "$dir" tag pristine
}

patches() {
	ls "$TOP"/rust/patches/*.patch
}

edit() {
	local dir=${1:?usage: series.sh edit DIR} p
	worktree "$dir"
	while read -r p; do
		git -C "$dir" -c user.name=rust44 -c user.email=rust44@localhost am -q --keep-cr "$p" ||
			die "$(basename "$p") does not apply"
	done < <(patches)
	log "series: $dir has one commit per patch on top of tag 'pristine'"
}

export_series() {
	local dir=${1:?usage: series.sh export DIR}
	rm -f "$TOP"/rust/patches/*.patch
	git -C "$dir" format-patch -q --no-signature --zero-commit --no-numbered \
		-o "$TOP/rust/patches" pristine..HEAD
	log "series: $(patches | wc -l) patches in rust/patches"
}

# review OUT: each patch plus the new files its 'New-files:' trailer names, as one series.
review() {
	local out=${1:?usage: series.sh review OUT} dir p f
	dir=$(mktemp -d)
	rm -rf "$dir" && worktree "$dir"
	while read -r p; do
		(cd "$dir" && patch -s -p1 --no-backup-if-mismatch <"$p") || die "$(basename "$p") does not apply"
		for f in $(sed -n 's/^New-files: //p' "$p"); do
			mkdir -p "$dir/$(dirname "$f")"
			cp "$TOP/$f" "$dir/$f"
		done
		git -C "$dir" add -A
		# The patch's own message (subject, body, trailers) becomes the commit's.
		sed -n '/^Subject: /,/^---$/p' "$p" | sed -e '1s/^Subject: \(\[PATCH\] \)\?//' -e '$d' |
			git -C "$dir" -c user.name=rust44 -c user.email=rust44@localhost commit -q -F -
	done < <(patches)
	# Every new file must belong to a patch.
	local listed
	listed=$(sed -n 's/^New-files: //p' "$TOP"/rust/patches/*.patch | tr ' ' '\n' | sort)
	for f in $(cd "$TOP" && git ls-files rust/kernel rust/helpers | sort); do
		grep -qx "$f" <<<"$listed" || die "$f is in no patch's New-files"
	done
	rm -rf "$out" && mkdir -p "$out"
	git -C "$dir" format-patch -q --no-signature -o "$out" pristine..HEAD
	rm -rf "$dir"
	log "series: $(ls "$out" | wc -l) files in $out"
}

check() {
	local out
	out=$(mktemp -d)
	review "$out"
	# --no-tree: the pristine extract has scripts/ but no full tree; the series is what is checked.
	perl "$PRISTINE/scripts/checkpatch.pl" --no-tree --terse --show-types \
		--ignore FILE_PATH_CHANGES,COMMIT_LOG_LONG_LINE,GERRIT_CHANGE_ID \
		"$out"/0*-*.patch
	local rc=$?
	rm -rf "$out"
	return $rc
}

case "${1:-}" in
edit) edit "${2:-}" ;;
export) export_series "${2:-}" ;;
review) review "${2:-}" ;;
check) check ;;
*) die "usage: series.sh edit DIR | export DIR | review OUT | check" ;;
esac
