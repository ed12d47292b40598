#!/bin/sh
# fileserve.sh: the file server benchmark: examples/fileserve/fileserve on each reactor backend
# in turn, on a free loopback port, serving a directory of random files made for the run, driven
# by bench/fileserve_load (keep-alive GETs, every body checked byte for byte) for each file size.
# Prints the RESULT lines on stdout (responses per second, body throughput, and the server's
# CPU time per response); everything else goes to stderr.
#
# Usage: bench/fileserve.sh [build-dir]   (default: the directory above this script's)
# Environment: FILESERVE_SIZES ("4096 1048576": bytes of each file served),
#              FILESERVE_CONNS (100), FILESERVE_DURATION (5 s), FILESERVE_WARMUP (1 s),
#              FILESERVE_WORKERS (server workers; 0 = one per CPU),
#              FILESERVE_CLIENT_THREADS (1),
#              FILESERVE_IMPLS ("libactor-epoll libactor-io_uring"): the server with
#                ACTOR_REACTOR=epoll, =io_uring; "libactor" for its default ("auto")
# A reactor the machine refuses is skipped with a note; any other failure fails.
set -u
BUILD=${1:-$(dirname "$0")/..}
SIZES=${FILESERVE_SIZES:-"4096 1048576"}
CONNS=${FILESERVE_CONNS:-100}
DURATION=${FILESERVE_DURATION:-5}
WARMUP=${FILESERVE_WARMUP:-1}
WORKERS=${FILESERVE_WORKERS:-0}
THREADS=${FILESERVE_CLIENT_THREADS:-1}
IMPLS=${FILESERVE_IMPLS:-"libactor-epoll libactor-io_uring"}
SERVER=$BUILD/examples/fileserve/fileserve
LOAD=$BUILD/bench/fileserve_load

for p in "$SERVER" "$LOAD"; do
	if [ ! -x "$p" ]; then
		echo "fileserve.sh: $p not built (make bench-fileserve builds it)" >&2
		exit 2
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fileserve-bench.XXXXXX")
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir "$tmp/www"
for size in $SIZES; do
	head -c "$size" /dev/urandom >"$tmp/www/$size.bin"
done

echo "fileserve.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
	"$CONNS connections, ${DURATION}s per run after ${WARMUP}s warm-up" >&2

# start_server REACTOR: starts the server on port 0 and sets $port; 77 if the reactor is
# refused here, 1 on other failures.
start_server() {
	: >"$tmp/out" # before the server starts: never the last one's port
	set -- "$1" 0 "$tmp/www"
	[ "$WORKERS" = 0 ] || set -- "$1" --workers "$WORKERS" 0 "$tmp/www"
	r=$1
	shift
	if [ "$r" = auto ]; then
		"$SERVER" "$@" >"$tmp/out" 2>"$tmp/err" &
	else
		ACTOR_REACTOR=$r "$SERVER" "$@" >"$tmp/out" 2>"$tmp/err" &
	fi
	pid=$!
	i=0
	while [ $i -lt 100 ]; do
		port=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\),.*/\1/p' "$tmp/out")
		[ -n "$port" ] && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			pid=
			cat "$tmp/err" >&2
			grep -q actor_system_create "$tmp/err" && return 77
			return 1
		fi
		sleep 0.05
		i=$((i + 1))
	done
	echo "fileserve.sh: the server did not report its port in 5 s" >&2
	return 1
}

status=0
for impl in $IMPLS; do
	case $impl in
	libactor) reactor=auto ;;
	libactor-epoll | libactor-io_uring) reactor=${impl#libactor-} ;;
	*)
		echo "fileserve.sh: unknown server $impl" >&2
		status=1
		continue
		;;
	esac
	start_server "$reactor"
	rc=$?
	if [ $rc -eq 77 ]; then
		echo "SKIP $impl: reactor not available here" >&2
		continue
	fi
	[ $rc -eq 0 ] || { status=1; continue; }
	echo "fileserve.sh: $impl on port $port" >&2
	for size in $SIZES; do
		case $size in
		*[!0-9]*) name=$size ;;
		*) name=$(awk -v s="$size" 'BEGIN { if (s % 1048576 == 0) print s / 1048576 "m";
			else if (s % 1024 == 0) print s / 1024 "k"; else print s }') ;;
		esac
		"$LOAD" --port "$port" --path "/$size.bin" --file "$tmp/www/$size.bin" \
			--conns "$CONNS" --duration "$DURATION" --warmup "$WARMUP" \
			--threads "$THREADS" --name "fileserve_${name}_c$CONNS" --impl "$impl" \
			--server-pid "$pid" || status=1
	done
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null || { echo "fileserve.sh: $impl did not exit 0" >&2; status=1; }
	pid=
	[ -s "$tmp/err" ] && sed "s/^/  server: /" "$tmp/err" >&2
done
exit $status
