#!/bin/sh
# noisy.sh: the busy-neighbour group: the messaging benchmarks, libactor's and its peers', with
# one busy process pinned to the last CPU. `make bench-noisy`; bench/compare.sh runs it once a
# round and reports the group (RESULTS.md, "Busy neighbour").
#
# Usage: bench/noisy.sh [builddir]   (default: the current directory; the libactor benchmarks
#                                     must be built there, in bench/)
#
# Starts `taskset -c <cpu> sh -c 'while :; do :; done'`, then runs pingpong, counting, threadring
# and fork_join_throughput once per implementation (alternating), and prints on stdout each row
# the group keeps (pingpong, counting_1to1, counting_4to1, threadring_503, fork_join_throughput)
# as the program printed it, with `_noisy` added to its name:
#   RESULT name=pingpong_noisy impl=libactor metric=roundtrips_per_s value=... unit=1/s
#   RESULT name=pingpong_noisy impl=go metric=roundtrips_per_s value=... unit=1/s
# The counts are reduced (bench/compare-lib.sh, noisy_args) and printed on stderr. The neighbour
# is killed by its PID when the script ends, however it ends. A run that fails or takes longer
# than NOISY_TIMEOUT seconds prints no row and is named on stderr; the status is then 1.
#
# Every runtime keeps its defaults: libactor one worker per CPU, not pinned (ACTOR_BENCH_PIN=1
# pins them, to see what pinning costs beside a neighbour); the peers' threads are not pinned.
#
# Environment:
#   NOISY_IMPLS="..."    implementations (default "libactor go"; bench/compare.sh passes its own)
#   NOISY_BENCHES="..."  programs (default: all four)
#   NOISY_CPU=N          the neighbour's CPU (default: the last, nproc - 1)
#   NOISY_TIMEOUT=S      seconds before a run is killed (default 60)
#   BENCH_COMPARE_QUICK=1  quick counts
set -u

here=$(cd "$(dirname "$0")" && pwd) # the source bench/
builddir=$(cd "${1:-.}" && pwd)
peerbin=$builddir/bench/peers
quick=${BENCH_COMPARE_QUICK:-0}
timeout_s=${NOISY_TIMEOUT:-60}
timeout_opts=--foreground # so that ^C reaches the benchmark at once
# shellcheck source=bench/compare-lib.sh
. "$here/compare-lib.sh"
impls=${NOISY_IMPLS:-"libactor go"}
benches=${NOISY_BENCHES:-$NOISY_PROGS}
cpu=${NOISY_CPU:-$(($(nproc) - 1))}

# The neighbour: started as a simple command, so that $! is its PID (taskset execs the shell).
neighbour=""
# shellcheck disable=SC2317 # called by the trap
stop_neighbour() {
	if [ -n "$neighbour" ]; then
		kill "$neighbour" 2>/dev/null
		wait "$neighbour" 2>/dev/null
		neighbour=""
	fi
}
trap stop_neighbour EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# Which implementations can run, and their programs built.
runs=""
for impl in $impls; do
	if ! have_impl "$impl"; then
		say "skipping $impl: $(why_missing "$impl")"
		continue
	fi
	for b in $benches; do
		if build_peer "$impl" "$b"; then
			runs="$runs $impl:$b"
		elif [ "$impl" = libactor ]; then
			say "bench/$b is not built in $builddir (make bench/$b)"
			exit 2
		else
			say "$impl has no $b (or it failed to build); skipped"
		fi
	done
done

[ "$(nproc)" -gt 1 ] || say "one CPU only: the neighbour shares it with everything"
taskset -c "$cpu" sh -c 'while :; do :; done' &
neighbour=$!
if ! kill -0 "$neighbour" 2>/dev/null; then
	say "could not start the neighbour on CPU $cpu"
	exit 2
fi
say "busy neighbour on CPU $cpu (PID $neighbour); counts: $(noisy_counts)"

status=0
for b in $benches; do
	for impl in $impls; do
		case " $runs " in *" $impl:$b "*) ;; *) continue ;; esac
		args=$(noisy_args "$b")
		say "$impl $b ${args:-(its default counts)}"
		# shellcheck disable=SC2086 # $args is a word list on purpose
		out=$(run_impl "$impl" "$b" all $args)
		rc=$?
		printf '%s\n' "$out" | awk -v keep="$NOISY_ROWS" '
			BEGIN { n = split(keep, k, " "); for (i = 1; i <= n; i++) kept["name=" k[i]] = 1 }
			$1 == "RESULT" && ($2 in kept) { $2 = $2 "_noisy"; print }'
		if [ "$rc" -ne 0 ]; then
			why="status $rc"
			[ "$rc" -eq 124 ] && why="timed out after ${timeout_s}s"
			say "FAILED: $impl $b ($why); the rows it did not print are missing"
			status=1
		fi
	done
done
exit $status
