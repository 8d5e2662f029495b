# rust44: the user's entry points. Everything heavy lives in tools/*.sh; caches live in
# $(RUST44_CACHE) (default ~/.cache/rust44), never in the repo.
#   make run [CMD='...']    build everything, boot QEMU, shell (or run CMD and exit with its status)
#   make check              the test command: host tests, KUnit and kselftests in QEMU (TAP), on
#                           the default and the debug kernel
#   make check-full         make check with the debug kernel's long tests too (over an hour)
#   make bench              benchmarks: rust44 against the C counterpart in one boot (a report)
#   make trials             the long power-cut run: 100 trials per configuration (TRIALS=N), a
#                           counts table in the report
#   make soak               the hardening suite's long run (fuzzing, races, fault injection) on
#                           both kernels (SOAK_SECONDS per race, SOAK_SEEDS fuzz seeds)
#   make lint               rustfmt and clippy, the kernel's way and the host's
#   KERNEL=default|debug    the kernel for run (default: default) and check (default: both); debug
#                           is KASAN, lockdep and kmemleak
export KERNEL

.PHONY: all deps kernel modules run check check-full bench trials soak lint clean distclean

all: kernel

deps:
	@tools/deps.sh

kernel: deps
	@tools/kernel.sh build
	@tools/extmod.sh

# Rebuilds only the out-of-tree modules: the quick loop while working on one module.
modules: deps
	@tools/extmod.sh

run: kernel
ifdef CMD
	@tools/vm.sh cmd '$(subst ','\'',$(CMD))'
else
	@tools/vm.sh shell
endif

check: deps
	@tools/check.sh

check-full: deps
	@RUST44_CHECK_FULL=1 tools/check.sh

bench: deps
	@tools/bench.sh

trials: deps
	@tools/trials.sh

soak: deps
	@tools/soak.sh

lint: deps
	@tools/lint.sh

clean:
	rm -rf target

distclean: clean
	rm -rf "$${RUST44_CACHE:-$$HOME/.cache/rust44}"
