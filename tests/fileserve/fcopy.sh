#!/bin/sh
# fcopy.sh: examples/fileserve/fcopy copies files byte for byte (checked with cmp) on each
# reactor backend the machine allows, keeps the source's permission bits, truncates a longer
# destination, and fails with a message and exit status 1 on a missing source, a destination
# it cannot create and a destination that is the source (which it leaves intact); 2 for bad
# arguments. Every run is under a watchdog (timeout: 60 s times CK_TIMEOUT_MULTIPLIER) that
# only bounds a hang.
#
# Usage: tests/fileserve/fcopy.sh   (from the build directory; $FCOPY overrides the program)
set -u
FCOPY=${FCOPY:-examples/fileserve/fcopy}
LIMIT=$((60 * ${CK_TIMEOUT_MULTIPLIER:-1}))
work=$(mktemp -d "${TMPDIR:-/tmp}/fcopy.XXXXXX") || exit 1
trap 'rm -rf "$work"' EXIT
failed=0

fail() {
	echo "FAIL: $*"
	failed=1
}

# run REACTOR ARGS...: fcopy on that backend; its exit status, its stderr in $work/err.
run() {
	r=$1
	shift
	ACTOR_REACTOR=$r timeout "$LIMIT" "$FCOPY" "$@" 2>"$work/err"
}

# copies REACTOR NAME: copies $work/NAME to $work/NAME.copy and compares them.
copies() {
	rm -f "$work/$2.copy"
	if ! run "$1" "$work/$2" "$work/$2.copy"; then
		fail "$1: fcopy $2 failed: $(cat "$work/err")"
	elif ! cmp "$work/$2" "$work/$2.copy"; then
		fail "$1: the copy of $2 differs"
	fi
}

# refuses REACTOR STATUS TEXT ARGS...: fcopy exits STATUS and says TEXT.
refuses() {
	r=$1
	want=$2
	text=$3
	shift 3
	run "$r" "$@"
	rc=$?
	[ $rc -eq "$want" ] || fail "$r: fcopy $*: exit status $rc, expected $want"
	grep -q -- "$text" "$work/err" || fail "$r: fcopy $*: said '$(cat "$work/err")', not '$text'"
}

[ -x "$FCOPY" ] || { echo "FAIL: $FCOPY not built"; exit 1; }
head -c $((5 * 1048576 + 12345)) /dev/urandom >"$work/random" # not a whole number of blocks
head -c $((4 * 1048576)) /dev/urandom >"$work/blocks"          # exactly the blocks in flight
head -c 100 /dev/urandom >"$work/small"
: >"$work/empty"
chmod 640 "$work/random"

reactors=epoll
if run io_uring "$work/empty" "$work/probe"; then
	reactors="epoll io_uring"
else
	echo "SKIP io_uring: $(cat "$work/err")"
fi

for r in $reactors; do
	for f in random blocks small empty; do
		copies "$r" "$f"
	done
	mode=$(stat -c %a "$work/random.copy")
	[ "$mode" = 640 ] || fail "$r: the copy's mode is $mode, not 640"

	# A longer destination is truncated to the source's length.
	head -c $((7 * 1048576)) /dev/zero >"$work/small.copy"
	copies "$r" small

	rm -f "$work/none.copy"
	refuses "$r" 1 "cannot open '$work/nothing': No such file or directory" \
		"$work/nothing" "$work/none.copy"
	[ ! -e "$work/none.copy" ] || fail "$r: a destination was made for a missing source"
	refuses "$r" 1 "cannot create '$work/no/dir': No such file or directory" \
		"$work/small" "$work/no/dir"
	refuses "$r" 1 "cannot create '$work': Is a directory" "$work/small" "$work"
	refuses "$r" 1 "cannot read '$work': Is a directory" "$work" "$work/x"
	cp "$work/random" "$work/random.keep"
	refuses "$r" 1 "is the same file as" "$work/random" "$work/random"
	ln -sf "$work/random" "$work/link"
	refuses "$r" 1 "is the same file as" "$work/random" "$work/link"
	cmp "$work/random" "$work/random.keep" || fail "$r: copying a file onto itself changed it"
	refuses "$r" 2 "usage: fcopy SRC DST" "$work/random"
done

[ $failed -eq 0 ] && echo "fcopy.sh: copies byte for byte and refuses cleanly ($reactors)"
exit $failed
