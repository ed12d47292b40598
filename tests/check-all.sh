#!/bin/sh
# check-all.sh: the whole test gate: `make check` and `make distcheck` on the default build
# (jemalloc), then the suite again under ThreadSanitizer and under AddressSanitizer with
# UndefinedBehaviorSanitizer (both with clang, without jemalloc), each in its own copy of the
# distributed tree so that they never disturb the in-tree build. Ends with one line:
# "N passed, M failed", the test programs over all four builds.
set -eu
cd "$(dirname "$0")/.."
JOBS=$(nproc 2>/dev/null || echo 2)
LOG=$(mktemp)
STEP=$(mktemp)
trap 'rm -f "$LOG" "$STEP"' EXIT

# logged CMD...: runs CMD, shows its output, keeps it for the count, and returns its status
# (a pipe into tee would lose the status: /bin/sh has no pipefail).
logged() {
	rc=0
	"$@" >"$STEP" 2>&1 || rc=$?
	cat "$STEP"
	cat "$STEP" >>"$LOG"
	return $rc
}

# failed DIR: shows the logs of the tests that failed in build DIR (automake gathers them in
# test-suite.log), for a CI run whose only record is its output; then fails.
failed() {
	echo "check-all.sh: tests failed in ${1}; their logs follow"
	[ -f "$1/test-suite.log" ] && cat "$1/test-suite.log"
	exit 1
}

[ -x configure ] || autoreconf -fi
[ -f Makefile ] || ./configure
make -j"$JOBS"
logged make -j"$JOBS" check || failed .
logged make -j"$JOBS" distcheck

sanitize() { # name, CFLAGS
	dir="build-$1"
	rm -rf "$dir"
	make distdir distdir="$dir" >/dev/null
	(
		cd "$dir"
		./configure -q --without-jemalloc CC=clang CFLAGS="$2 -O1 -g -fno-omit-frame-pointer"
		make -j"$JOBS" >/dev/null
	)
	logged make -C "$dir" -j"$JOBS" check || failed "$dir"
	rm -rf "$dir"
	echo "check-all.sh: $1 build passed"
}

# Sanitized code runs 5-20x slower: give Check's per-test timeouts room. Each sanitizer reads
# only its own options.
export CK_TIMEOUT_MULTIPLIER=10
export TSAN_OPTIONS="halt_on_error=1"
export ASAN_OPTIONS="detect_leaks=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
sanitize tsan "-fsanitize=thread"
sanitize asan "-fsanitize=address,undefined -fno-sanitize-recover=undefined"
echo "check-all.sh: all builds passed"
passed=$(sed -n 's/^# PASS: *//p' "$LOG" | awk '{n += $1} END {print n + 0}')
failed=$(sed -n 's/^# \(FAIL\|ERROR\|XPASS\): *//p' "$LOG" | awk '{n += $1} END {print n + 0}')
echo "$passed passed, $failed failed"
