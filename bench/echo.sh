#!/bin/sh
# echo.sh: the echo benchmark: each server in turn (libactor on epoll, libactor on io_uring, and
# a plain single-threaded C epoll server as the floor), on a free loopback port, driven by
# bench/echo_client with 512-byte round trips at several connection counts. Prints the RESULT
# lines on stdout (requests per second, and the server's CPU time per request); everything
# else goes to stderr.
#
# Usage: bench/echo.sh [dir-with-the-programs]      (default: the directory of this script)
# Environment: ECHO_CONNS ("1 50 300 1000"), ECHO_DURATION (5 s), ECHO_WARMUP (1 s),
#              ECHO_WORKERS (libactor workers; 0 = one per CPU), ECHO_CLIENT_THREADS (1),
#              ECHO_IMPLS (servers, in order; default "libactor-epoll libactor-io_uring c-epoll"):
#                libactor-epoll, libactor-io_uring: bench/echo_server on that reactor
#                libactor: bench/echo_server on its default reactor ("auto")
#                c-epoll: bench/echo_epoll
#                go, caf: <dir>/peers/<impl>/echo_server (bench/compare.sh builds them)
#                erlang: bench/peers/erlang/echo_server.escript, run with escript
#              ECHO_PIN ("SERVER_CPUS:CLIENT_CPUS", e.g. "0:1"; default unset): run every
#                server under taskset -c SERVER_CPUS and the client under taskset -c CLIENT_CPUS,
#                so that neither takes the other's CPU (with one libactor worker, the fairest
#                comparison with the single-threaded c-epoll; bench/README.md, Echo)
#              The peers run with their runtime's defaults (every CPU); ECHO_WORKERS is
#              libactor's alone, and so is ECHO_LIBACTOR_ARGS (more bench/echo_server options;
#              default --no-pin: the client shares the CPUs with the server, none of the other
#              servers pins its threads, and a worker pinned to the CPU the client runs on
#              halves the rate at 2 workers on 2 CPUs: bench/README.md, Echo).
# A libactor reactor the machine refuses is skipped with a note; any other failure fails.
set -u
BIN=${1:-$(dirname "$0")}
CONNS=${ECHO_CONNS:-"1 50 300 1000"}
DURATION=${ECHO_DURATION:-5}
WARMUP=${ECHO_WARMUP:-1}
WORKERS=${ECHO_WORKERS:-0}
THREADS=${ECHO_CLIENT_THREADS:-1}
IMPLS=${ECHO_IMPLS:-"libactor-epoll libactor-io_uring c-epoll"}
SRC=$(cd "$(dirname "$0")" && pwd)
LIBACTOR_ARGS=${ECHO_LIBACTOR_ARGS---no-pin}
PIN=${ECHO_PIN:-}
SERVER_PIN=
CLIENT_PIN=
if [ -n "$PIN" ]; then
	case $PIN in
	*:*) ;;
	*)
		echo "echo.sh: ECHO_PIN must be SERVER_CPUS:CLIENT_CPUS, e.g. 0:1 (got '$PIN')" >&2
		exit 2
		;;
	esac
	SERVER_PIN="taskset -c ${PIN%%:*}"
	CLIENT_PIN="taskset -c ${PIN#*:}"
	if ! $SERVER_PIN true || ! $CLIENT_PIN true; then
		echo "echo.sh: cannot pin to ECHO_PIN=$PIN" >&2
		exit 2
	fi
fi

for p in echo_server echo_epoll echo_client; do
	if [ ! -x "$BIN/$p" ]; then
		echo "echo.sh: $BIN/$p not built (make bench/$p)" >&2
		exit 2
	fi
done

tmp=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "echo.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)," \
	"${DURATION}s per run after ${WARMUP}s warm-up${PIN:+, server:client CPUs $PIN}" >&2

# start_server NAME CMD...: starts the server on port 0 and sets $port; 77 if it cannot run
# here (an unavailable reactor), 1 on other failures.
start_server() {
	name=$1
	shift
	: >"$tmp/out"
	# shellcheck disable=SC2086 # $SERVER_PIN is a word list on purpose (or empty)
	$SERVER_PIN "$@" --port 0 >"$tmp/out" 2>"$tmp/err" &
	pid=$!
	port=
	i=0
	while [ $i -lt 100 ]; do
		port=$(sed -n 's/^PORT \([0-9][0-9]*\)$/\1/p' "$tmp/out")
		[ -n "$port" ] && return 0
		if ! kill -0 "$pid" 2>/dev/null; then
			wait "$pid"
			rc=$?
			pid=
			cat "$tmp/err" >&2
			[ $rc -eq 77 ] && return 77
			echo "echo.sh: $name exited with $rc before listening" >&2
			return 1
		fi
		sleep 0.05
		i=$((i + 1))
	done
	echo "echo.sh: $name did not report its port in 5 s" >&2
	return 1
}

stop_server() {
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
	[ -s "$tmp/err" ] && sed "s/^/  server: /" "$tmp/err" >&2
}

status=0
run() { # IMPL CMD...
	impl=$1
	shift
	start_server "$impl" "$@"
	rc=$?
	if [ $rc -eq 77 ]; then
		echo "SKIP $impl: reactor not available here" >&2
		return 0
	fi
	[ $rc -eq 0 ] || { status=1; return 0; }
	echo "echo.sh: $impl on port $port" >&2
	for n in $CONNS; do
		# shellcheck disable=SC2086
		$CLIENT_PIN "$BIN/echo_client" --port "$port" --conns "$n" --duration "$DURATION" \
			--warmup "$WARMUP" --threads "$THREADS" --impl "$impl" \
			--server-pid "$pid" || status=1
	done
	stop_server
}

for impl in $IMPLS; do
	case $impl in
	# shellcheck disable=SC2086 # $LIBACTOR_ARGS is a word list on purpose
	libactor) run libactor "$BIN/echo_server" --reactor auto --workers "$WORKERS" $LIBACTOR_ARGS ;;
	libactor-epoll | libactor-io_uring)
		# shellcheck disable=SC2086
		run "$impl" "$BIN/echo_server" --reactor "${impl#libactor-}" --workers "$WORKERS" \
			$LIBACTOR_ARGS
		;;
	c-epoll) run "$impl" "$BIN/echo_epoll" ;;
	go | caf)
		if [ -x "$BIN/peers/$impl/echo_server" ]; then
			run "$impl" "$BIN/peers/$impl/echo_server"
		else
			echo "echo.sh: $BIN/peers/$impl/echo_server not built" >&2
			status=1
		fi
		;;
	erlang) run "$impl" escript "$SRC/peers/erlang/echo_server.escript" ;;
	*)
		echo "echo.sh: unknown server $impl" >&2
		status=1
		;;
	esac
done
exit $status
