#!/bin/bash
# topology.sh: the cluster test's network, three hosts on one private subnet, and its teardown.
#
# Sourced by run.sh; run on its own, `topology.sh sweep` removes what runs that were killed
# with SIGKILL left behind (their namespaces, their servers, their temporary directories);
# run.sh sweeps as it starts.
#
# Two modes:
#   netns     each host is a network namespace of its own, joined by a veth pair to a bridge
#             in a "switch" namespace; a fifth namespace holds the test's clients. Addresses:
#             10.213.77.1, .2, .3 for the hosts h1, h2, h3, 10.213.77.100 for the clients,
#             on 10.213.77.0/24, the only network those namespaces have (no route out, IPv6
#             off). Every host listens on the same ports: NATS 4222 (clients), 6222 (routes),
#             8222 (monitoring), chat 6667. No interface, address or route is added to the
#             namespace the test started in, so `ip link` there is unchanged.
#   loopback  when namespaces cannot be made (no privilege): the three hosts are 127.0.0.1,
#             told apart by port, twelve free ports picked at start.
# CLUSTER_MODE=netns or loopback forces one (netns then fails if namespaces cannot be made);
# unset or auto tries netns once (`ip netns add`) and falls back to loopback, saying why.
#
# Names: every namespace is "lacl-<pid of run.sh>-<role>", so two runs never collide and a
# sweep can tell a dead run's leftovers (its pid is gone) from a live one's.
#
# State (CLUSTER_STATE, a directory made by mktemp -d, "lacl-<pid>.XXXXXX"): topology (the hosts, one a line, read
# by the driver), pids/ (one file per server the driver started, "<pid> <program>"), netns
# (the namespaces made, one a line), and the servers' configurations, stores and logs.

# shellcheck disable=SC2034 # TOPO_WHY and the addresses are for the script that sources this
CLUSTER_SUBNET=10.213.77
CLUSTER_HOSTS=3
CLUSTER_CLIENT_ADDR=$CLUSTER_SUBNET.100
TOPO_NS_PREFIX=lacl

# topo_log MESSAGE: one line on stderr, marked as the topology's.
topo_log() {
	echo "cluster: $*" >&2
}

# topo_ns ROLE: the namespace name of ROLE (h1, h2, h3, sw, cl) in this run.
topo_ns() {
	echo "$TOPO_NS_PREFIX-$TOPO_RUN-$1"
}

# topo_choose_mode: sets TOPO_MODE to netns or loopback and TOPO_WHY to the reason, trying
# `ip netns add` once unless CLUSTER_MODE forces a mode. Returns 1 when netns was forced and
# cannot be had.
topo_choose_mode() {
	local probe err
	case ${CLUSTER_MODE:-auto} in
	loopback)
		TOPO_MODE=loopback
		TOPO_WHY="CLUSTER_MODE=loopback"
		return 0
		;;
	netns | auto) ;;
	*)
		topo_log "CLUSTER_MODE must be netns, loopback or auto, not '$CLUSTER_MODE'"
		return 1
		;;
	esac
	probe=$(topo_ns probe)
	if ! command -v ip >/dev/null 2>&1; then
		err="the ip command (iproute2) is not installed"
	elif err=$(ip netns add "$probe" 2>&1); then
		ip netns del "$probe"
		TOPO_MODE=netns
		TOPO_WHY="ip netns add works here"
		return 0
	fi
	err=${err:-ip netns add failed}
	if [ "${CLUSTER_MODE:-auto}" = netns ]; then
		topo_log "CLUSTER_MODE=netns, but network namespaces cannot be made: $err"
		return 1
	fi
	TOPO_MODE=loopback
	TOPO_WHY="network namespaces cannot be made here ($err)"
}

# topo_in ROLE CMD...: runs CMD inside ROLE's namespace.
topo_in() {
	local role=$1
	shift
	ip netns exec "$(topo_ns "$role")" "$@"
}

# topo_add_ns ROLE: makes ROLE's namespace (recorded for the teardown first), with loopback up
# and IPv6 off, so that the links carry no router solicitations or other chatter.
topo_add_ns() {
	local ns
	ns=$(topo_ns "$1")
	echo "$ns" >>"$CLUSTER_STATE/netns"
	ip netns add "$ns" || return 1
	ip -n "$ns" link set lo up || return 1
	topo_in "$1" sh -c 'echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 &&
		echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6'
}

# topo_link ROLE ADDR: a veth pair from the switch's bridge to ROLE's eth0, which gets ADDR/24.
# The pair is made inside the switch namespace with its other end sent straight to ROLE's, so
# no interface ever appears where the test was started.
topo_link() {
	local role=$1 addr=$2 sw
	sw=$(topo_ns sw)
	ip -n "$sw" link add "p-$role" type veth peer name eth0 netns "$(topo_ns "$role")" &&
		ip -n "$sw" link set "p-$role" master br0 up &&
		ip -n "$(topo_ns "$role")" addr add "$addr/24" dev eth0 &&
		ip -n "$(topo_ns "$role")" link set eth0 up
}

# topo_up_netns: the switch, the hosts and the clients' namespace, linked; writes the topology.
topo_up_netns() {
	local i
	topo_add_ns sw || return 1
	ip -n "$(topo_ns sw)" link add br0 type bridge || return 1
	ip -n "$(topo_ns sw)" link set br0 up || return 1
	for i in $(seq 1 "$CLUSTER_HOSTS"); do
		topo_add_ns "h$i" && topo_link "h$i" "$CLUSTER_SUBNET.$i" || return 1
		# name namespace address client-port route-port http-port chat-port
		echo "h$i $(topo_ns "h$i") $CLUSTER_SUBNET.$i 4222 6222 8222 6667" \
			>>"$CLUSTER_STATE/topology"
	done
	topo_add_ns cl && topo_link cl "$CLUSTER_CLIENT_ADDR" || return 1
}

# topo_free_ports N: N distinct TCP ports free on 127.0.0.1 right now, one a line (the kernel
# picks them; they are held together, so they differ, and released as the helper exits).
topo_free_ports() {
	"${PYTHON:-python3}" -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print("\n".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

# topo_up_loopback: the hosts as port sets on 127.0.0.1; writes the topology.
topo_up_loopback() {
	local ports i
	mapfile -t ports < <(topo_free_ports $((CLUSTER_HOSTS * 4)))
	[ "${#ports[@]}" -eq $((CLUSTER_HOSTS * 4)) ] || return 1
	for i in $(seq 1 "$CLUSTER_HOSTS"); do
		echo "h$i - 127.0.0.1 ${ports[*]:$(((i - 1) * 4)):4}" >>"$CLUSTER_STATE/topology"
	done
}

# topo_up: the topology of TOPO_MODE. Needs TOPO_RUN and CLUSTER_STATE.
topo_up() {
	: >"$CLUSTER_STATE/topology"
	: >"$CLUSTER_STATE/netns"
	mkdir -p "$CLUSTER_STATE/pids"
	if [ "$TOPO_MODE" = netns ]; then
		topo_up_netns
	else
		topo_up_loopback
	fi
}

# topo_kill_pidfiles: SIGKILL to every server the driver recorded that still runs that program
# (the check keeps a recycled pid safe), then waits until each is gone.
topo_kill_pidfiles() {
	local f pid prog killed=""
	for f in "$CLUSTER_STATE"/pids/*; do
		[ -f "$f" ] || continue
		read -r pid prog <"$f" || continue
		[ -n "$pid" ] || continue
		if [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$prog"; then
			kill -9 "$pid" 2>/dev/null
			killed="$killed $pid"
		fi
	done
	# shellcheck disable=SC2086
	topo_wait_gone $killed
}

# topo_wait_gone PID...: waits (at most 5 s) until none of the PIDs is alive (a zombie counts
# as gone). A killed process that is not our child gives no event to wait on, so this polls.
topo_wait_gone() {
	local pid left n=0
	while [ $n -lt 50 ]; do
		left=""
		for pid in "$@"; do
			if [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
				left="$left $pid"
			fi
		done
		[ -z "$left" ] && return 0
		sleep 0.1
		n=$((n + 1))
	done
	topo_log "some processes did not die:$left"
}

# topo_kill_ns NS: SIGKILL to every process whose network is NS, then deletes NS.
topo_kill_ns() {
	local pids
	pids=$(ip netns pids "$1" 2>/dev/null)
	if [ -n "$pids" ]; then
		# shellcheck disable=SC2086
		kill -9 $pids 2>/dev/null
		# shellcheck disable=SC2086
		topo_wait_gone $pids
	fi
	ip netns del "$1" 2>/dev/null
}

# topo_down: the teardown, for any exit: kills every process the run started (the driver and
# the servers, recorded in pids/, and everything in the run's namespaces), deletes the
# namespaces and the state directory. Safe to call twice, and on a half-made topology.
topo_down() {
	local ns
	[ -n "${CLUSTER_STATE:-}" ] && [ -d "$CLUSTER_STATE" ] || return 0
	# The driver is our child: killed and collected here, quietly (bash would say "Killed").
	if [ -n "${TOPO_DRIVER:-}" ]; then
		{
			kill -9 "$TOPO_DRIVER"
			wait "$TOPO_DRIVER"
		} 2>/dev/null
		TOPO_DRIVER=
	fi
	topo_kill_pidfiles
	if [ -f "$CLUSTER_STATE/netns" ]; then
		# The switch goes last: its veth ends die with the host namespaces.
		for ns in $(tac "$CLUSTER_STATE/netns"); do
			topo_kill_ns "$ns"
		done
	fi
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$TOPO_NS_PREFIX-$TOPO_RUN-"); do
		topo_kill_ns "$ns"
	done
	rm -rf "$CLUSTER_STATE"
	CLUSTER_STATE=
}

# topo_leftovers: prints this run's namespaces that still exist (none after topo_down).
topo_leftovers() {
	ip netns list 2>/dev/null | awk '{print $1}' | grep "^$TOPO_NS_PREFIX-$TOPO_RUN-"
}

# topo_state_dir: makes this run's state directory, named after the run so that a sweep can
# find it, and prints its path.
topo_state_dir() {
	mktemp -d "${TMPDIR:-/tmp}/$TOPO_NS_PREFIX-$TOPO_RUN.XXXXXX"
}

# topo_sweep: removes what runs whose run.sh is gone (killed with SIGKILL, so their trap never
# ran) left behind: their namespaces with the processes still inside them, the servers their
# state directory lists, and that directory. A live run's are left alone.
topo_sweep() {
	local ns run dir
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep "^$TOPO_NS_PREFIX-[0-9]*-"); do
		run=${ns#"$TOPO_NS_PREFIX"-}
		run=${run%%-*}
		[ -d "/proc/$run" ] && continue
		topo_log "removing namespace $ns, left by run $run, which is gone"
		topo_kill_ns "$ns"
	done
	for dir in "${TMPDIR:-/tmp}/$TOPO_NS_PREFIX"-*.*; do
		[ -d "$dir/pids" ] || continue
		run=${dir##*/"$TOPO_NS_PREFIX"-}
		run=${run%%.*}
		case $run in '' | *[!0-9]*) continue ;; esac
		[ -d "/proc/$run" ] && continue
		topo_log "removing $dir and its servers, left by run $run, which is gone"
		(CLUSTER_STATE=$dir && topo_kill_pidfiles)
		rm -rf "$dir"
	done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case ${1:-} in
	sweep) topo_sweep ;;
	*)
		echo "usage: topology.sh sweep (removes what cluster runs that are gone left behind)" >&2
		exit 2
		;;
	esac
fi
