#!/bin/bash
# cluster.sh: the chat server on three hosts over NATS JetStream against the same clients on
# one host, in one run: a 3-node nats-server cluster and three chat-server processes
# (--cluster, R3 stream) on loopback ports, driven by bench/chat_load, then one chat-server
# without --cluster. Prints RESULT lines (impl=libactor) on stdout; notes go to stderr.
#
#   chat_cluster_broadcast_<where>  N clients in K channels, flat out, M lines each:
#                                   deliveries_per_s
#   chat_cluster_paced_<where>      N clients, RATE lines/s in total: latency_p50_ms,
#                                   latency_p99_ms (send to delivery, every member)
# where: spread3 (client i on host i % 3, each channel's members on every host), host1 (all
# clients on one host of the cluster: the stream's round trip, no other host to feed) and
# single (one chat-server without --cluster). spread3 against host1 is what spanning hosts
# costs; host1 against single is the JetStream acknowledgement per line.
#
# Usage: bench/cluster.sh [top-build-dir]   (`make bench-cluster` runs it after building)
# Environment: CLUSTER_BENCH_CLIENTS (60), CLUSTER_BENCH_CHANNELS (3),
#   CLUSTER_BENCH_MESSAGES (100), CLUSTER_BENCH_RATE (300), CLUSTER_BENCH_PACED (100),
#   CLUSTER_BENCH_WORKERS (chat-server workers per host; 1: three hosts share 2 CPUs here).
# Every load checks each line reached every member exactly once and in order; a failed load
# is reported and the script exits 1 at the end. Without nats-server it says so and exits 0.
set -u
BUILD=${1:-.}
LOAD=$BUILD/bench/chat_load
SERVER=$BUILD/examples/chat/chat-server
CLIENTS=${CLUSTER_BENCH_CLIENTS:-60}
CHANNELS=${CLUSTER_BENCH_CHANNELS:-3}
MSGS=${CLUSTER_BENCH_MESSAGES:-100}
RATE=${CLUSTER_BENCH_RATE:-300}
PACED=${CLUSTER_BENCH_PACED:-100}
WORKERS=${CLUSTER_BENCH_WORKERS:-1}

NATS=$(command -v nats-server 2>/dev/null || { [ -x /usr/sbin/nats-server ] && echo /usr/sbin/nats-server; })
if [ -z "$NATS" ]; then
	echo "cluster.sh: skipped: nats-server is not installed (apt-get install nats-server)" >&2
	exit 0
fi
for p in "$LOAD" "$SERVER"; do
	if [ ! -x "$p" ]; then
		echo "cluster.sh: $p not built (make bench/chat_load examples/chat/chat-server)" >&2
		exit 2
	fi
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chat-cluster.XXXXXX")
pids=()
status=0
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port, wait_port
# shellcheck source=bench/ports.sh
. "$(dirname "$0")/ports.sh"

# The NATS cluster.
declare -a cport rport
urls=
for i in 1 2 3; do
	cport[i]=$(free_port)
	rport[i]=$(free_port)
	urls="$urls${urls:+,}nats://127.0.0.1:${cport[i]}"
done
for i in 1 2 3; do
	mkdir -p "$tmp/n$i"
	cat >"$tmp/n$i/n.conf" <<EOF
server_name: n$i
listen: 127.0.0.1:${cport[i]}
jetstream { store_dir: "$tmp/n$i/js" }
cluster {
  name: bench
  listen: 127.0.0.1:${rport[i]}
  routes: [ nats-route://127.0.0.1:${rport[1]}, nats-route://127.0.0.1:${rport[2]}, nats-route://127.0.0.1:${rport[3]} ]
}
EOF
	"$NATS" -c "$tmp/n$i/n.conf" -l "$tmp/n$i/log" &
	pids+=($!)
done
for i in 1 2 3; do
	wait_port "${cport[i]}" || { echo "cluster.sh: nats-server n$i did not start" >&2; exit 1; }
done

# The chat hosts. The first to start makes the stream and bucket; it retries until the
# cluster has elected its JetStream leader.
declare -a hport
start_host() { # i
	hport[$1]=$(free_port)
	for _ in $(seq 1 30); do
		"$SERVER" --bind 127.0.0.1 --port "${hport[$1]}" --name "h$1" --workers "$WORKERS" \
			--flood-rate 0 --no-pin --cluster "$urls" >"$tmp/h$1.out" 2>"$tmp/h$1.err" &
		local pid=$!
		if wait_port "${hport[$1]}"; then
			pids+=("$pid")
			return 0
		fi
		kill -9 "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		sleep 0.5
	done
	echo "cluster.sh: chat host h$1 did not start:" >&2
	tail -3 "$tmp/h$1.err" >&2
	exit 1
}
for i in 1 2 3; do start_host "$i"; done
sleep 2 # a heartbeat round: every host knows the others before the clients join

loads=0
run_load() { # name where servers...
	local name=$1 where=$2 servers=$3
	shift 3
	# Nicks of a finished load are released asynchronously: each load has nicks of its own.
	loads=$((loads + 1))
	if ! "$LOAD" --servers "$servers" --clients "$CLIENTS" --channels "$CHANNELS" \
		--name "${name}_$where" --nick-prefix "b$loads" --timeout 120 "$@"; then
		echo "cluster.sh: ${name}_$where failed" >&2
		status=1
	fi
}

spread="127.0.0.1:${hport[1]},127.0.0.1:${hport[2]},127.0.0.1:${hport[3]}"
one="127.0.0.1:${hport[1]}"
run_load chat_cluster_broadcast spread3 "$spread" --mode broadcast --messages "$MSGS"
run_load chat_cluster_broadcast host1 "$one" --mode broadcast --messages "$MSGS"
run_load chat_cluster_paced spread3 "$spread" --mode paced --messages "$PACED" --rate "$RATE"
run_load chat_cluster_paced host1 "$one" --mode paced --messages "$PACED" --rate "$RATE"

# The same clients on a chat-server without --cluster.
sport=$(free_port)
"$SERVER" --bind 127.0.0.1 --port "$sport" --workers "$WORKERS" --flood-rate 0 --no-pin \
	>"$tmp/single.out" 2>"$tmp/single.err" &
pids+=($!)
wait_port "$sport" || { echo "cluster.sh: the single chat-server did not start" >&2; exit 1; }
run_load chat_cluster_broadcast single "127.0.0.1:$sport" --mode broadcast --messages "$MSGS"
run_load chat_cluster_paced single "127.0.0.1:$sport" --mode paced --messages "$PACED" \
	--rate "$RATE"
# Where the CPU went (utime + stime of each process, seconds): what limits the cluster rows.
cpu_of() { awk '{ printf "%.2f", ($14 + $15) / '"$(getconf CLK_TCK)"' }' "/proc/$1/stat" 2>/dev/null; }
{
	printf "cluster.sh: CPU seconds over the whole run:"
	n=0
	for p in "${pids[@]}"; do
		n=$((n + 1))
		case $n in
		[1-3]) who="nats-server n$n" ;;
		[4-6]) who="chat-server h$((n - 3))" ;;
		*) who="chat-server single" ;;
		esac
		printf " %s %s," "$who" "$(cpu_of "$p")"
	done
	echo
} >&2
exit $status
