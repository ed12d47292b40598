#!/bin/sh
# compare.sh: libactor against its peers in Go, Erlang, CAF and tokio on every benchmark; writes
# RESULTS.md (tables, machine, date, scaling) and one SVG chart per group. `make bench-compare`.
#
# Usage: bench/compare.sh [builddir]   (default: the current directory; the libactor
#                                      benchmarks must be built there, in bench/)
#
# Each round runs every benchmark once per implementation, the implementations alternating
# (libactor go erlang caf tokio libactor go ...), so slow drifts of the machine hit all of them
# alike. A table cell is the median of the rounds, with their min-max. Peers are built here (Go
# with `go build`, CAF with the C++ compiler, tokio with cargo, offline against Debian's crate
# registry) into <builddir>/bench/peers/; Erlang peers are escripts run from the source tree. A
# peer whose toolchain is missing is named in RESULTS.md and skipped; nothing is ever filled in
# for it. What this script shares with bench/noisy.sh (toolchains, builds, runs) is in
# bench/compare-lib.sh.
#
# Scaling: every messaging benchmark also runs at 1, 2, ... workers below the CPU count
# (libactor: ACTOR_BENCH_WORKERS; Go: GOMAXPROCS; Erlang: +S; CAF: ACTOR_BENCH_WORKERS, read by
# bench.hpp; tokio: TOKIO_WORKER_THREADS), and is reported as a ratio to 1 worker; the all-CPUs
# column is the main runs.
#
# Blocking and files: blocking_roundtrip (no-op jobs to a blocking pool and back), file_seq (1 MiB
# writes and reads of a 1 GiB file through the page cache) and file_rand (4 KiB reads at random
# offsets of a cached 256 MiB file) form the "blocking and files" group, with its own tables and
# chart. Beside libactor and the Go peers, libuv's peers (bench/peers/libuv/, built by make when
# configure finds libuv) run in every round, whichever implementations are chosen, as the plain
# C loop (c-epoll) does in the network group; file_seq's own plain C loop reports as `c`. The
# file programs report one row per reactor backend (libactor-epoll, libactor-io_uring); the
# report measures the others against the backend libactor's `auto` chooses (io_uring where the
# kernel allows it). Each program reports the median of its own rounds, at its default sizes;
# file_seq runs 3 rounds instead of 5 (compare-lib.sh, args_for says why).
#
# Busy neighbour: each round also runs bench/noisy.sh once, with every implementation: the
# messaging benchmarks it covers (pingpong, counting, threadring, fork_join_throughput) with one
# busy process pinned to the last CPU, at reduced counts. Their rows (named <bench>_noisy) form
# the "busy neighbour" group, with its own tables and chart, and each is also reported as a
# ratio to its own quiet row.
#
# Environment:
#   BENCH_COMPARE_ROUNDS=N      rounds (default 5: about 11 minutes on a 2-CPU machine, builds
#                               and scaling runs included)
#   BENCH_COMPARE_QUICK=1       reduced counts (about a tenth), for a quick check of the suite
#   BENCH_COMPARE_IMPLS="..."   implementations (default "libactor go erlang caf tokio")
#   BENCH_COMPARE_BENCHES="..." benchmark programs (default: all of them, see BENCHES below;
#                               "blocking_roundtrip file_seq file_rand" runs that group alone)
#   BENCH_COMPARE_SCALING=0     skip the scaling runs
#   BENCH_COMPARE_FILES=0       skip the blocking-and-files group (blocking_roundtrip, file_seq,
#                               file_rand); BENCH_FILE_DIR, where their files go (default
#                               /var/tmp), is passed on
#   BENCH_COMPARE_NOISY=0       skip the busy-neighbour group (NOISY_CPU and NOISY_TIMEOUT, as
#                               bench/noisy.sh reads them, are passed on)
#   BENCH_COMPARE_OUT=DIR       where RESULTS.md and the charts go. Default: the source bench/
#                               for a full run; <builddir>/bench/compare-quick/ (QUICK) or
#                               compare-partial/ (fewer benchmarks, implementations or rounds)
#                               otherwise, so that bench/RESULTS.md is always a full run
#   Network group (RESULT lines named echo* or chat* form the "network" group, with its own
#   tables and chart):
#   BENCH_COMPARE_NETWORK=0     skip the echo benchmark. By default each round runs
#                               bench/echo.sh once with libactor (its default reactor), the plain
#                               C epoll loop (c-epoll) and each peer's echo server
#                               (bench/peers/*/echo_server.*), at 1, 50, 300 and 1,000 connections
#   BENCH_COMPARE_ECHO_DURATION=S  measured seconds per echo run (default 3; quick: 1)
#   BENCH_COMPARE_NETWORK_RESULTS="f1 f2"  files of RESULT lines recorded elsewhere (for
#                               example `make bench-chat > f1`); each file counts as one round
set -u

here=$(cd "$(dirname "$0")" && pwd) # the source bench/
builddir=$(cd "${1:-.}" && pwd)
rounds=${BENCH_COMPARE_ROUNDS:-5}
quick=${BENCH_COMPARE_QUICK:-0}
all_impls="libactor go erlang caf tokio"
impls=${BENCH_COMPARE_IMPLS:-$all_impls}
scaling=${BENCH_COMPARE_SCALING:-1}
network=${BENCH_COMPARE_NETWORK:-1}
files=${BENCH_COMPARE_FILES:-1}
noisy=${BENCH_COMPARE_NOISY:-1}
peerbin=$builddir/bench/peers
timeout_s=900 # per run: a hung peer must not hang the suite
timeout_opts=
# shellcheck source=bench/compare-lib.sh
. "$here/compare-lib.sh"

# The benchmark programs, by group. A program may print several rows (pingpong prints pingpong
# and pingpong_1core).
MESSAGING="pingpong counting threadring chameneos big fork_join_throughput"
SPAWNING="skynet spawn_idle fork_join_create"
FILES="blocking_roundtrip file_seq file_rand"
ALL_BENCHES="$MESSAGING $SPAWNING"
[ "$files" = 1 ] && ALL_BENCHES="$ALL_BENCHES $FILES"
BENCHES=${BENCH_COMPARE_BENCHES:-$ALL_BENCHES}

# bench/RESULTS.md only ever comes from a full run: every benchmark (the network, files and
# busy-neighbour ones included), every implementation, full counts, at least three rounds.
# Anything less goes to the build tree.
if [ "$quick" = 1 ]; then
	out=${BENCH_COMPARE_OUT:-$builddir/bench/compare-quick}
elif [ "$BENCHES" != "$MESSAGING $SPAWNING $FILES" ] || [ "$impls" != "$all_impls" ] ||
	[ "$rounds" -lt 3 ] || [ "$network" != 1 ] || [ "$noisy" != 1 ] || [ "$files" != 1 ] ||
	[ -n "${BENCH_COMPARE_NETWORK_RESULTS:-}" ]; then
	out=${BENCH_COMPARE_OUT:-$builddir/bench/compare-partial}
else
	out=${BENCH_COMPARE_OUT:-$here}
fi
work=$builddir/bench/compare-work
mkdir -p "$out" "$work" "$peerbin/go" "$peerbin/caf" "$peerbin/tokio"
raw=$work/raw.txt
notes=$work/notes.txt
: >"$raw"
: >"$notes"
: >"$work/stderr.log"
: >"$work/loads.txt"

note() { echo "$*" >>"$notes"; }

# run_one impl bench workers: runs one benchmark once; appends its RESULT lines to $raw, tagged
# with the round and the worker count ("all" = the runtime's default). Returns its status.
run_one() {
	impl=$1 b=$2 w=$3
	cut -d' ' -f1 /proc/loadavg >>"$work/loads.txt" # how busy the machine was, for the report
	# shellcheck disable=SC2046 # the arguments are a word list on purpose
	run_impl "$impl" "$b" "$w" $(args_for "$b") >"$work/out" 2>"$work/err"
	record $? "$impl $b" "$w"
}

# record status what workers: files what a run left in $work/out and $work/err: its RESULT lines
# into $raw, tagged with the round and the worker count; its stderr into the log; a failure on
# the terminal and in the notes. Returns the status.
record() {
	rc=$1 what=$2 w=$3
	grep '^RESULT ' "$work/out" | sed "s/^/round=$round workers=$w /" >>"$raw"
	{
		echo "== round $round, workers $w: $what (status $rc)"
		cat "$work/err"
	} >>"$work/stderr.log"
	if [ "$rc" -ne 0 ]; then
		say "$what (workers $w) FAILED with status $rc:"
		sed 's/^/    /' "$work/err" >&2
		note "FAILED: $what (round $round, workers $w) exited with status $rc;" \
			"the rows it did not print are missing from that round"
	fi
	return "$rc"
}

# ---------------------------------------------------------------------------------------------
# Setup

ncpu=$(nproc)
active=""
for impl in $impls; do
	if have_impl "$impl"; then
		active="$active $impl"
	else
		say "skipping $impl: $(why_missing "$impl")"
		note "MISSING: $impl: $(why_missing "$impl"). Skipped, not estimated."
	fi
done

# runs.txt lists what will run: "impl bench" for every pair that has a program.
: >"$work/runs.txt"
for b in $BENCHES; do
	for impl in $active; do
		if build_peer "$impl" "$b"; then
			echo "$impl $b" >>"$work/runs.txt"
		elif [ "$impl" = libactor ]; then
			say "bench/$b is not built in $builddir (make bench/$b)"
			exit 2
		else
			note "NO PEER: $impl has no $b (or it failed to build); that cell is empty."
		fi
	done
	# libuv's peers of the blocking and file benchmarks, whichever implementations are chosen.
	if [ -f "$here/peers/libuv/$b.c" ]; then
		if build_peer libuv "$b"; then
			echo "libuv $b" >>"$work/runs.txt"
		else
			note "NO PEER: libuv's $b is not built (configure found no libuv >= 1.44;" \
				"Debian: apt-get install libuv1-dev, then configure again); that cell is empty."
		fi
	fi
done

# The echo servers: libactor's and the plain C loop must be built; a peer's that fails to build
# is named and left out.
echo_impls=""
if [ "$network" = 1 ]; then
	for p in echo_server echo_epoll echo_client; do
		if [ ! -x "$builddir/bench/$p" ]; then
			say "bench/$p is not built in $builddir (make bench/$p)"
			exit 2
		fi
	done
	echo_impls="libactor c-epoll"
	for impl in $active; do
		[ "$impl" = libactor ] && continue
		if build_peer "$impl" echo_server; then
			echo_impls="$echo_impls $impl"
		else
			note "NO PEER: $impl has no echo server (or it failed to build); its echo cells are empty."
		fi
	done
fi
if [ "$quick" = 1 ]; then
	echo_conns="1 300"
	echo_duration=${BENCH_COMPARE_ECHO_DURATION:-1}
else
	echo_conns="1 50 300 1000"
	echo_duration=${BENCH_COMPARE_ECHO_DURATION:-3}
fi

has_run() { grep -qx "$1 $2" "$work/runs.txt"; }

# The busy-neighbour group: the programs of bench/noisy.sh that this run has, on every
# implementation that has one of them (noisy.sh skips a pair that has no program).
noisy_benches=""
noisy_impls=""
if [ "$noisy" = 1 ]; then
	for b in $NOISY_PROGS; do
		case " $BENCHES " in *" $b "*) noisy_benches="$noisy_benches $b" ;; esac
	done
	for impl in $active; do
		for b in $noisy_benches; do
			if has_run "$impl" "$b"; then
				noisy_impls="$noisy_impls $impl"
				break
			fi
		done
	done
fi

load0=$(cut -d' ' -f1-3 /proc/loadavg)
t_start=$(date +%s)
say "$rounds rounds of: $BENCHES; implementations:$active; $ncpu CPUs; load $load0"

# ---------------------------------------------------------------------------------------------
# The main runs: every benchmark on every implementation, alternating, once per round.

round=1
while [ $round -le "$rounds" ]; do
	for b in $BENCHES; do
		for impl in $active libuv; do
			has_run "$impl" "$b" || continue
			say "round $round/$rounds: $impl $b"
			run_one "$impl" "$b" all
		done
	done
	if [ "$network" = 1 ]; then
		say "round $round/$rounds: bench/echo.sh ($echo_impls)"
		cut -d' ' -f1 /proc/loadavg >>"$work/loads.txt"
		# Every runtime's defaults: libactor one worker per CPU, the peers every CPU.
		(
			unset ACTOR_BENCH_WORKERS GOMAXPROCS ERL_FLAGS ACTOR_REACTOR ECHO_PIN \
				ECHO_LIBACTOR_ARGS ECHO_CLIENT_THREADS
			ECHO_IMPLS=$echo_impls ECHO_CONNS=$echo_conns ECHO_DURATION=$echo_duration \
				ECHO_WARMUP=1 ECHO_WORKERS=0 sh "$here/echo.sh" "$builddir/bench" \
				>"$work/out" 2>"$work/err"
		)
		record $? bench/echo.sh all
	fi
	if [ -n "$noisy_benches" ]; then
		say "round $round/$rounds: bench/noisy.sh (${noisy_impls# }; ${noisy_benches# })"
		cut -d' ' -f1 /proc/loadavg >>"$work/loads.txt"
		NOISY_IMPLS=$noisy_impls NOISY_BENCHES=$noisy_benches sh "$here/noisy.sh" \
			"$builddir" >"$work/out" 2>"$work/err"
		record $? bench/noisy.sh all
	fi
	round=$((round + 1))
done

# Network results recorded elsewhere: each file is one round.
n=0
for f in ${BENCH_COMPARE_NETWORK_RESULTS:-}; do
	n=$((n + 1))
	grep '^RESULT ' "$f" | sed "s/^/round=file$n workers=all /" >>"$raw"
done

# ---------------------------------------------------------------------------------------------
# Scaling: the messaging benchmarks at every worker count below the CPU count.

if [ "$scaling" = 1 ] && [ "$ncpu" -gt 1 ]; then
	round=1
	while [ $round -le "$rounds" ]; do
		w=1
		while [ $w -lt "$ncpu" ]; do
			for b in $MESSAGING; do
				for impl in $active; do
					has_run "$impl" "$b" || continue
					say "scaling round $round/$rounds, $w workers: $impl $b"
					run_one "$impl" "$b" "$w"
				done
			done
			w=$((w + 1))
		done
		round=$((round + 1))
	done
fi

t_end=$(date +%s)
load1=$(cut -d' ' -f1-3 /proc/loadavg)
cp "$raw" "$out/compare-raw.txt"

# ---------------------------------------------------------------------------------------------
# The report

cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
[ -n "$cpu" ] || cpu=$(uname -m)
versions=$work/versions.txt
{
	echo "libactor $(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$builddir/config.h" \
		2>/dev/null), $(${CC:-cc} --version | head -n 1)"
	case " $active " in *" go "*) go version ;; esac
	case " $active " in *" erlang "*)
		echo "Erlang/OTP $(erl -noshell -eval \
			'io:format("~s, erts ~s, ~s", [erlang:system_info(otp_release),
			 erlang:system_info(version), erlang:system_info(emu_flavor)]), halt().' \
			2>/dev/null)" ;;
	esac
	case " $active " in *" caf "*)
		echo "CAF $(dpkg-query -W -f '${Version}' libcaf-dev 2>/dev/null ||
			echo '(version unknown)'), $(${CXX:-c++} --version | head -n 1)" ;;
	esac
	case " $active " in *" tokio "*)
		cat "$peerbin/tokio/toolchain.txt" ;;
	esac
	if grep -q '^libuv ' "$work/runs.txt"; then
		echo "libuv $(pkg-config --modversion libuv 2>/dev/null || echo '(version unknown)')"
	fi
} >"$versions"

meta=$work/meta.txt
{
	echo "date $(date -u '+%Y-%m-%d %H:%M UTC')"
	echo "cpu $cpu"
	echo "ncpu $ncpu"
	echo "kernel $(uname -sr)"
	# shellcheck disable=SC1091 # the system's file, read for its name
	echo "os $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
	echo "rounds $rounds"
	echo "quick $quick"
	echo "impls$active"
	echo "load $load0 -> $load1"
	echo "runloads $(sort -n "$work/loads.txt" | awk '{v[NR] = $1}
		END { if (NR) printf "%s %s %s", v[1], v[int((NR + 1) / 2)], v[NR] }')"
	echo "minutes $(((t_end - t_start + 59) / 60))"
	echo "network $network"
	echo "noisy $([ -n "$noisy_benches" ] && echo 1 || echo 0)"
	echo "noisycpu ${NOISY_CPU:-$((ncpu - 1))}"
	echo "noisycounts $(noisy_counts)"
	echo "noisytimeout ${NOISY_TIMEOUT:-60}"
	echo "echo $echo_conns connections, ${echo_duration}s per run after 1s of warm-up"
	echo "messaging $MESSAGING"
	echo "spawning $SPAWNING"
	echo "filedir ${BENCH_FILE_DIR:-/var/tmp}, $(df -T "${BENCH_FILE_DIR:-/var/tmp}" 2>/dev/null |
		awk 'NR == 2 { print $2 }')"
	echo "filescounts $(files_counts)"
} >"$meta"

awk -f "$here/compare-report.awk" -v out="$out" -v work="$work" -v metaf="$meta" \
	-v versionsf="$versions" -v notesf="$notes" "$raw" >"$out/RESULTS.md" || exit 1
# The hand-written part: where libactor is behind, and why.
if [ -f "$here/compare-notes.md" ]; then
	printf '\n' >>"$out/RESULTS.md"
	cat "$here/compare-notes.md" >>"$out/RESULTS.md"
fi

# Charts: one per group that has data, and one for scaling.
if command -v gnuplot >/dev/null 2>&1; then
	for g in messaging spawning files network noisy scaling; do
		[ -s "$work/chart-$g.dat" ] || continue
		gnuplot "$work/chart-$g.gp" || say "gnuplot failed for $g"
	done
else
	say "no gnuplot (Debian: apt-get install gnuplot-nox): RESULTS.md without charts"
fi
say "wrote $out/RESULTS.md ($(((t_end - t_start + 59) / 60)) min of runs)"
