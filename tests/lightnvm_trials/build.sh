# lightnvm_trials: the trial writer and checker (tests/lib/powercut.c) and the guest helpers of
# trials (tests/lib/trial.sh); dmsetup comes from raid5_journal's build.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
gcc -static -O2 -Wall -Werror -pthread -o "$OUT/powercut" "$HERE/../lib/powercut.c"
cp "$HERE/../lib/trial.sh" "$OUT/trial.sh"
