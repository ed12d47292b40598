# compare-lib.sh: what bench/compare.sh and bench/noisy.sh share, sourced by both: the counts
# of quick runs, which toolchains are there, how each implementation's peers are built, and how
# one program is run with a given worker count.
#
# The sourcing script sets:
#   here      the source bench/
#   builddir  the build tree (the libactor benchmarks are in its bench/)
#   peerbin   where peers are built (<builddir>/bench/peers)
#   quick     1 for reduced counts
#   timeout_s seconds before a run is killed; timeout_opts, options for timeout(1) (may be empty)
# shellcheck shell=sh disable=SC2154 # those, set by the sourcing script

say() { echo "${0##*/}: $*" >&2; }

# Arguments for quick runs: about a tenth of the work (file_seq a quarter of its file). Full runs
# use each program's defaults, but for file_seq's rounds (args_for).
quick_args() {
	case $1 in
	pingpong) echo 200000 ;;
	counting) echo 1000000 ;;
	threadring) echo 1000000 ;;
	skynet) echo 100000 ;;
	spawn_idle) echo 100000 ;;
	chameneos) echo 20000 ;;
	big) echo 2000 ;;
	fork_join_throughput) echo 1000 ;;
	fork_join_create) echo 4000 ;;
	blocking_roundtrip) echo 20000 ;;
	file_seq) echo 256 3 ;;
	file_rand) echo 20000 3 ;;
	esac
}

# file_seq runs 3 rounds of its own, not its default 5: each round it changes which of its three
# (the C loop and the two backends) goes first, so 3 is the fewest that treat them alike, and a
# run takes about 5 s instead of 9 on a 2-CPU machine. Its size stays the default, 1 GiB: read
# from the page cache that takes about 80 ms, and a smaller file would be timed in a few ms.
args_for() {
	if [ "$quick" = 1 ]; then
		quick_args "$1"
		return
	fi
	case $1 in
	file_seq) echo 1024 3 ;;
	esac
}

# The counts of the blocking and file benchmarks in words, for RESULTS.md (each program divides
# its first argument as its header says).
files_counts() {
	if [ "$quick" = 1 ]; then
		echo "blocking_roundtrip 20,000 jobs at 64 in flight, 4,000 at 1; file_seq a 256 MiB" \
			"file; file_rand 20,000 reads at 32 in flight, 2,000 at 1"
	else
		echo "blocking_roundtrip 200,000 jobs at 64 in flight, 40,000 at 1; file_seq a 1 GiB" \
			"file; file_rand 200,000 reads at 32 in flight, 20,000 at 1"
	fi
}

# ---------------------------------------------------------------------------------------------
# Toolchains and builds

# tokio comes from Debian's crate registry (librust-tokio-dev): the peers build offline against
# it, never from crates.io (bench/peers/README.md says why).
cargo_registry=/usr/share/cargo/registry

have_impl() { # impl: 0 if its toolchain is usable
	case $1 in
	libactor) return 0 ;;
	go) command -v go >/dev/null 2>&1 ;;
	erlang) command -v escript >/dev/null 2>&1 && command -v erl >/dev/null 2>&1 ;;
	caf) printf '#include <caf/all.hpp>\nint main(){}\n' |
		${CXX:-c++} -std=c++17 -fsyntax-only -x c++ - >/dev/null 2>&1 ;;
	tokio) command -v "${CARGO:-cargo}" >/dev/null 2>&1 &&
		[ -n "$(find "$cargo_registry" -maxdepth 1 -name 'tokio-1.*' 2>/dev/null)" ] ;;
	*) return 1 ;;
	esac
}

why_missing() {
	case $1 in
	go) echo "no \`go\` (Debian: apt-get install golang-go)" ;;
	erlang) echo "no \`escript\`/\`erl\` (Debian: apt-get install erlang-base)" ;;
	caf) echo "CAF headers do not compile with ${CXX:-c++} (Debian: apt-get install libcaf-dev)" ;;
	tokio) echo "no \`${CARGO:-cargo}\`, or no tokio in $cargo_registry" \
		"(Debian: apt-get install cargo librust-tokio-dev)" ;;
	*) echo "unknown implementation" ;;
	esac
}

# needs_build target sources...: 0 when target is missing or older than any source.
needs_build() {
	t=$1
	shift
	[ -e "$t" ] || return 0
	for s in "$@"; do
		[ -n "$(find "$s" -newer "$t")" ] && return 0
	done
	return 1
}

build_peer() { # impl bench: builds the peer if it has one; 1 if it has none or fails
	case $1 in
	go)
		src=$here/peers/go/$2.go
		[ -f "$src" ] || return 1
		bin=$peerbin/go/$2
		# The echo server stands alone; the others share bench.go.
		common=$here/peers/go/bench.go
		[ "$2" = echo_server ] && common=
		if needs_build "$bin" "$src" $common; then
			say "go build $2"
			mkdir -p "$peerbin/go"
			# Go's own build cache, or one in the build tree when there is no home.
			if [ -z "${HOME:-}" ] && [ -z "${GOCACHE:-}" ]; then
				GOCACHE=$peerbin/go-cache
				export GOCACHE
			fi
			GOFLAGS='' go build -o "$bin" $common "$src" || return 1
		fi
		;;
	caf)
		src=$here/peers/caf/$2.cpp
		[ -f "$src" ] || return 1
		bin=$peerbin/caf/$2
		libs=-lcaf_core
		[ "$2" = echo_server ] && libs="-lcaf_io -lcaf_core"
		if needs_build "$bin" "$src" "$here/peers/caf/bench.hpp"; then
			say "c++ $2 (CAF)"
			mkdir -p "$peerbin/caf"
			# shellcheck disable=SC2086 # $libs is a word list on purpose
			${CXX:-c++} -O2 -std=c++17 -Wall -Wextra -o "$bin" "$src" $libs \
				-pthread || return 1
		fi
		;;
	tokio)
		[ -f "$here/peers/tokio/$2.rs" ] || return 1
		if [ ! -f "$peerbin/tokio/toolchain.txt" ] ||
			needs_build "$peerbin/tokio/$2" "$here/peers/tokio/Cargo.toml" \
				"$here/peers/tokio/"*.rs; then
			build_tokio || return 1
		fi
		;;
	erlang)
		[ -f "$here/peers/erlang/$2.escript" ] || return 1
		;;
	libactor)
		[ -x "$builddir/bench/$2" ] || return 1
		;;
	libuv)
		# Built by make (Makefile.am) when configure finds libuv.
		[ -x "$builddir/bench/peers/libuv/$2" ] || return 1
		;;
	esac
	return 0
}

# build_tokio: builds every tokio peer at once (one cargo package) in <builddir>/bench/peers/tokio,
# offline against Debian's registry, and puts each binary there under the benchmark's name. The
# package's files are linked in from the source tree, so that Cargo.lock and target/ stay in the
# build tree; cargo's configuration and home are in the build tree too, so nothing reads or
# writes the user's ~/.cargo. toolchain.txt records the tokio and the rustc it was built with.
build_tokio() {
	src=$here/peers/tokio
	dir=$peerbin/tokio
	mkdir -p "$dir/.cargo" "$dir/cargo-home" || return 1
	if [ "$(cd "$src" && pwd -P)" != "$(cd "$dir" && pwd -P)" ]; then
		for tokio_src in "$src"/Cargo.toml "$src"/*.rs; do
			ln -sf "$tokio_src" "$dir/" || return 1
		done
	fi
	cat >"$dir/.cargo/config.toml" <<EOF
# Written by bench/compare-lib.sh: crates come from Debian's registry, never the network.
[source.crates-io]
replace-with = "debian"

[source.debian]
directory = "$cargo_registry"

[net]
offline = true
EOF
	say "cargo build (tokio peers, offline, $cargo_registry)"
	(cd "$dir" && CARGO_HOME=$dir/cargo-home ${CARGO:-cargo} build --release --quiet) ||
		return 1
	# (Names of their own: the caller may be looping over b and f.)
	for tokio_src in "$src"/*.rs; do
		tokio_bin=${tokio_src##*/}
		tokio_bin=${tokio_bin%.rs}
		[ -x "$dir/target/release/$tokio_bin" ] || continue # bench.rs, the library
		cp "$dir/target/release/$tokio_bin" "$dir/$tokio_bin.tmp" &&
			mv "$dir/$tokio_bin.tmp" "$dir/$tokio_bin" || return 1
	done
	# The tokio from Cargo.lock; the rustc from cargo's record of the one it ran.
	echo "tokio $(sed -n '/^name = "tokio"$/{n;s/^version = "\(.*\)"$/\1/p;}' \
		"$dir/Cargo.lock") (Debian's crate registry)," \
		"$(grep -o '"rustc [0-9][^"\\]*' "$dir/target/.rustc_info.json" | head -n 1 |
			cut -c2-)" >"$dir/toolchain.txt"
}

# ---------------------------------------------------------------------------------------------
# Runs

# run_impl impl bench workers [args...]: runs one program once, in the foreground, under
# timeout(1), with the worker count in the runtime's own terms; "all" is every runtime's
# default, so nothing inherited from the caller's environment may change it. Returns its status.
run_impl() {
	# (Names of their own: the caller may be looping over impl, b and w.)
	run_impl=$1 run_b=$2 run_w=$3
	shift 3
	case $run_impl in
	libactor) set -- "$builddir/bench/$run_b" "$@" ;;
	go | caf | tokio) set -- "$peerbin/$run_impl/$run_b" "$@" ;;
	libuv) set -- "$builddir/bench/peers/libuv/$run_b" "$@" ;;
	erlang) set -- escript "$here/peers/erlang/$run_b.escript" "$@" ;;
	esac
	(
		unset ACTOR_BENCH_WORKERS GOMAXPROCS ERL_FLAGS TOKIO_WORKER_THREADS
		if [ "$run_w" != all ]; then
			case $run_impl in
			libactor | caf) ACTOR_BENCH_WORKERS=$run_w && export ACTOR_BENCH_WORKERS ;;
			go) GOMAXPROCS=$run_w && export GOMAXPROCS ;;
			erlang) ERL_FLAGS="+S $run_w:$run_w" && export ERL_FLAGS ;;
			tokio) TOKIO_WORKER_THREADS=$run_w && export TOKIO_WORKER_THREADS ;;
			esac
		fi
		# shellcheck disable=SC2086 # $timeout_opts is a word list on purpose
		exec timeout ${timeout_opts:-} "$timeout_s" "$@"
	)
}

# ---------------------------------------------------------------------------------------------
# The busy-neighbour group (bench/noisy.sh runs it; compare.sh reports it)

# The programs, and the rows of theirs the group keeps (not pingpong_1core, whose one worker
# is chosen for it, nor threadring_503_spread).
# shellcheck disable=SC2034 # read by the sourcing scripts
NOISY_PROGS="pingpong counting threadring fork_join_throughput"
# shellcheck disable=SC2034 # read by the sourcing scripts
NOISY_ROWS="pingpong counting_1to1 counting_4to1 threadring_503 fork_join_throughput"

# Reduced counts: beside a busy neighbour a libactor round trip could take a scheduler time
# slice, and pingpong fell to thousands of round trips per second, at times fewer, where its
# default two million would take many minutes. The rates stay comparable with the quiet rows (a
# rate is a rate) as long as a run outlasts its start: pingpong's 10,000 round trips took half a
# millisecond once the pair stayed on one worker, less than one time slice, and measured
# 2.0M-14.2M round trips/s where 200,000 measured 13.2M-18.4M (bench/README.md, "Beside a busy
# neighbour"). fork_join_throughput reports a time, so it keeps the quiet run's count.
noisy_args() {
	case $1 in
	pingpong) if [ "$quick" = 1 ]; then echo 20000; else echo 200000; fi ;;
	counting) if [ "$quick" = 1 ]; then echo 200000; else echo 1000000; fi ;;
	threadring) if [ "$quick" = 1 ]; then echo 300000; else echo 1000000; fi ;;
	*) args_for "$1" ;;
	esac
}

# The counts in words, for the terminal and RESULTS.md.
noisy_counts() {
	fj=$(noisy_args fork_join_throughput)
	echo "pingpong $(noisy_args pingpong) round trips; counting $(noisy_args counting)" \
		"messages per row; threadring $(noisy_args threadring) hops;" \
		"fork_join_throughput ${fj:-10000} messages per actor (the quiet count)"
}
