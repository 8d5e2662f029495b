# raid5_trials: the trial writer and checker (tests/lib/powercut.c), the guest helpers of trials
# (tests/lib/trial.sh) and, through raid5_journal's build.sh, Debian's dmsetup and mdadm in OUT/bin.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
gcc -static -O2 -Wall -Werror -pthread -o "$OUT/powercut" "$HERE/../lib/powercut.c"
cp "$HERE/../lib/trial.sh" "$OUT/trial.sh"
SRC="$SRC" OUT="$OUT" ROOT="$ROOT" sh "$HERE/../raid5_journal/build.sh"
