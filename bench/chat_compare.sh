#!/bin/bash
# chat_compare.sh: the chat benchmark: the libactor chat server, and ngircd and InspIRCd where
# installed (apt-get install -y ngircd inspircd), each on a free loopback port with its flood
# limits lifted, driven by bench/chat_load through the same three loads:
#   chat_broadcast_c<N>  N clients in one channel, flat out, M*50/N lines each
#                        (deliveries_per_s)
#   chat_paced_c50       50 clients, RATE lines/s in total                  (latency_p99_ms)
#   chat_idle_10k        10,000 registered clients saying nothing          (bytes_per_conn)
# Prints the RESULT lines on stdout (impl=libactor|ngircd|inspircd); notes go to stderr.
#
# Usage: bench/chat_compare.sh [top-build-dir]   (default: the current directory; `make
#        bench-chat` runs it from the top build directory after building what it needs)
# Environment: CHAT_IMPLS ("libactor ngircd inspircd"), CHAT_BROADCAST_CLIENTS ("50 500"),
#   CHAT_MESSAGES (500), CHAT_RATE (1000), CHAT_PACED_MESSAGES (200), CHAT_IDLE_CLIENTS (10000),
#   CHAT_WORKERS (libactor workers; 0 = one per CPU), CHAT_REACTOR (auto),
#   CHAT_LIBACTOR_ARGS (more chat-server options; default --no-pin: the other servers are not
#   pinned to CPUs either, and on a shared machine a pinned worker waits behind whatever else
#   runs on its CPU; set it to "" to measure the pinned default).
# A server that is not installed is skipped with a note; a load that fails (lost, duplicated or
# reordered lines, a stall) is reported and the script exits 1 at the end.
set -u
BUILD=${1:-.}
LOAD=$BUILD/bench/chat_load
SERVER=$BUILD/examples/chat/chat-server
IMPLS=${CHAT_IMPLS:-"libactor ngircd inspircd"}
SIZES=${CHAT_BROADCAST_CLIENTS:-"50 500"}
MSGS=${CHAT_MESSAGES:-500}
RATE=${CHAT_RATE:-1000}
PACED_MSGS=${CHAT_PACED_MESSAGES:-200}
IDLE=${CHAT_IDLE_CLIENTS:-10000}
WORKERS=${CHAT_WORKERS:-0}
REACTOR=${CHAT_REACTOR:-auto}
LIBACTOR_ARGS=${CHAT_LIBACTOR_ARGS---no-pin}

for p in "$LOAD" "$SERVER"; do
	if [ ! -x "$p" ]; then
		echo "chat_compare.sh: $p not built (make bench/chat_load examples/chat/chat-server)" >&2
		exit 2
	fi
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null

tmp=$(mktemp -d "${TMPDIR:-/tmp}/chat-compare.XXXXXX")
pid=
status=0
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# free_port, wait_port
# shellcheck source=bench/ports.sh
. "$(dirname "$0")/ports.sh"

start_libactor() { # port
	# shellcheck disable=SC2086
	"$SERVER" --port "$1" --workers "$WORKERS" --reactor "$REACTOR" --flood-rate 0 \
		$LIBACTOR_ARGS >"$tmp/libactor.out" 2>"$tmp/libactor.err" &
	pid=$!
}

start_ngircd() { # port
	command -v ngircd >/dev/null 2>&1 || return 77
	# MaxPenaltyTime = 0: no command penalties and no per-second command throttle (ngircd
	# throttles through the same penalty time).
	cat >"$tmp/ngircd.conf" <<EOF
[Global]
	Name = irc.ngircd.test
	Info = chat benchmark
	AdminInfo1 = bench
	AdminInfo2 = bench
	AdminEMail = bench@localhost
	Listen = 127.0.0.1
	Ports = $1
	MotdPhrase = "chat benchmark"
	PidFile = $tmp/ngircd.pid
[Limits]
	MaxConnections = 100000
	MaxConnectionsIP = 0
	MaxJoins = 0
	MaxPenaltyTime = 0
	PingTimeout = 600
	PongTimeout = 600
[Options]
	DNS = no
	Ident = no
	PAM = no
EOF
	ngircd --nodaemon --config "$tmp/ngircd.conf" >"$tmp/ngircd.log" 2>&1 &
	pid=$!
}

start_inspircd() { # port
	command -v inspircd >/dev/null 2>&1 || [ -x /usr/sbin/inspircd ] || return 77
	local bin
	bin=$(command -v inspircd 2>/dev/null || echo /usr/sbin/inspircd)
	echo "chat benchmark" >"$tmp/inspircd.motd"
	# fakelag off and a command rate no client reaches: no flood penalties; queues large
	# enough that the load generator's window never trips them.
	cat >"$tmp/inspircd.conf" <<EOF
<server name="irc.inspircd.test" description="chat benchmark" network="bench">
<admin name="bench" nick="bench" email="bench@localhost">
<bind address="127.0.0.1" port="$1" type="clients">
<power diepass="die-bench" restartpass="restart-bench">
<connect allow="*" timeout="60" threshold="100000000" commandrate="100000000" fakelag="off"
         pingfreq="600" hardsendq="4194304" softsendq="4194304" recvq="65536"
         localmax="100000" globalmax="100000" limit="100000" maxchans="100"
         resolvehostnames="no" useident="no">
<channels users="100" opers="100">
<dns server="127.0.0.1" timeout="1">
<pid file="$tmp/inspircd.pid">
<files motd="$tmp/inspircd.motd">
<performance netbuffersize="10240" somaxconn="4096" softlimit="100000" clonesonconnect="no"
             quietbursts="yes">
<log method="file" type="* -USERINPUT -USEROUTPUT" level="default" target="$tmp/inspircd.log">
EOF
	"$bin" --nofork --runasroot --config="$tmp/inspircd.conf" >"$tmp/inspircd.out" 2>&1 &
	pid=$!
}

stop_server() {
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 1 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	pid=
}

# run IMPL LOAD-ARGS...: one load against a fresh server.
run() {
	local impl=$1 port rc
	shift
	port=$(free_port) || { echo "chat_compare.sh: no free port" >&2; exit 1; }
	"start_$impl" "$port"
	rc=$?
	if [ "$rc" -eq 77 ]; then
		return 77
	fi
	if ! wait_port "$port"; then
		echo "chat_compare.sh: $impl did not start on port $port" >&2
		cat "$tmp/$impl".* >&2 2>/dev/null
		stop_server
		status=1
		return 1
	fi
	local extra=
	# ngircd listens with a short backlog: fewer connections at once make it faster.
	[ "$impl" = ngircd ] && extra="--connect-batch 8"
	# shellcheck disable=SC2086
	if ! "$LOAD" --port "$port" --impl "$impl" --server-pid "$pid" --timeout 300 $extra "$@"; then
		echo "chat_compare.sh: $impl: chat_load $* failed" >&2
		status=1
	fi
	stop_server
}

echo "chat_compare.sh: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)" >&2
for impl in $IMPLS; do
	for n in $SIZES; do
		# The same lines in total at every size: M for 50 clients, fewer each for more.
		m=$((MSGS * 50 / n))
		[ "$m" -ge 10 ] || m=10
		run "$impl" --mode broadcast --clients "$n" --messages "$m"
		if [ $? -eq 77 ]; then
			echo "chat_compare.sh: $impl is not installed: skipped" >&2
			continue 2
		fi
	done
	run "$impl" --mode paced --clients 50 --rate "$RATE" --messages "$PACED_MSGS"
	run "$impl" --mode idle --clients "$IDLE"
done
exit $status
