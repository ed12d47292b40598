#!/bin/sh
# fuzz.sh: builds the chat server's fuzz target (examples/chat/fuzz_parser.c: the framer and
# parser, and whole sessions on the in-memory bus) with libFuzzer, AddressSanitizer and
# UndefinedBehaviorSanitizer, and runs it for FUZZ_SECONDS (default 30) from the seed corpus
# in tests/chat/corpus. A crash, leak or hang fails the test and leaves the input in
# $FUZZ_ARTIFACTS (default: a crash-* file in the current directory).
#
# Exits 77 (skip) when clang or its libFuzzer runtime is missing (Debian: apt-get install clang).
set -eu

top=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-30}
CLANG=${CLANG:-clang}

if ! command -v "$CLANG" >/dev/null 2>&1; then
	echo "SKIP: $CLANG not found; fuzzing needs clang with libFuzzer"
	exit 77
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/chat-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT INT TERM

probe="$work/probe.c"
printf '#include <stdint.h>\n#include <stddef.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n' >"$probe"
if ! "$CLANG" -fsanitize=fuzzer,address "$probe" -o "$work/probe" >/dev/null 2>&1; then
	echo "SKIP: $CLANG cannot build with -fsanitize=fuzzer,address (no libFuzzer runtime)"
	exit 77
fi

src="$top/examples/chat"
"$CLANG" -std=gnu11 -g -O1 -fno-omit-frame-pointer \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	-I"$top/include" -I"$src" -I"$top/tests/chat" \
	"$src/fuzz_parser.c" "$src/irc.c" "$src/srv.c" "$src/fanout.c" "$src/registry.c" \
	"$src/channel.c" "$src/chanmode.c" "$src/chanlink.c" "$src/session.c" "$src/session_cmd.c" \
	"$src/session_reply.c" "$top/tests/chat/bus.c" \
	-o "$work/fuzz_parser"

# libFuzzer adds what it finds to the first corpus directory: keep the seeds read-only.
mkdir "$work/corpus"
cp "$top/tests/chat/corpus/"* "$work/corpus/"
artifacts=${FUZZ_ARTIFACTS:-./}

echo "fuzz.sh: fuzzing for ${seconds}s"
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1} \
	"$work/fuzz_parser" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
	-rss_limit_mb=2048 -print_final_stats=1 -dict="$top/tests/chat/irc.dict" \
	-artifact_prefix="$artifacts" "$work/corpus" 2>"$work/log" || {
	tail -60 "$work/log"
	echo "fuzz.sh: the fuzzer found a failure; the input is in ${artifacts}"
	exit 1
}
grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)' "$work/log" || true
echo "fuzz.sh: no failure in ${seconds}s"
