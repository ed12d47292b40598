#!/bin/sh
# check-all.sh: the whole test gate: `make check` and `make distcheck` on the default build
# (jemalloc), then the suite again under ThreadSanitizer and under AddressSanitizer with
# UndefinedBehaviorSanitizer (both with clang, without jemalloc), each in its own copy of the
# distributed tree so that they never disturb the in-tree build.
set -eu
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)

[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j"$JOBS"
make -j"$JOBS" check
make -j"$JOBS" distcheck

sanitize() { # name, CFLAGS
	dir="build-$1"
	rm -rf "$dir"
	make distdir distdir="$dir" >/dev/null
	(
		cd "$dir"
		./configure -q --without-jemalloc CC=clang CFLAGS="$2 -O1 -g -fno-omit-frame-pointer"
		make -j"$JOBS" check
	)
	rm -rf "$dir"
	echo "check-all.sh: $1 build passed"
}

# Sanitized code runs 5-20x slower: give Check's per-test timeouts room.
export CK_TIMEOUT_MULTIPLIER=10
TSAN_OPTIONS="halt_on_error=1" sanitize tsan "-fsanitize=thread"
ASAN_OPTIONS="detect_leaks=1" UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" \
	sanitize asan "-fsanitize=address,undefined -fno-sanitize-recover=undefined"
echo "check-all.sh: all builds passed"
