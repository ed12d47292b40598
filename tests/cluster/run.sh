#!/bin/bash
# run.sh: the multi-host chat cluster test (`make check-cluster`). Makes three hosts on a
# private subnet (topology.sh: network namespaces, or loopback ports where namespaces cannot be
# made), then runs the driver (scenarios.py, Python 3), which starts a 3-node NATS JetStream
# cluster and a chat-server per host and drives them with real IRC connections. Whatever
# happens (success, failure, Ctrl-C, SIGTERM, a server killed), the trap kills everything the
# run started and removes the namespaces and the temporary directory.
#
# Environment: CHAT_SERVER (default examples/chat/chat-server), NATS_SERVER (default
# nats-server on PATH or /usr/sbin), PYTHON (python3), CLUSTER_MODE (auto, netns, loopback),
# CLUSTER_SCENARIOS, CLUSTER_VARIANTS and the CLUSTER_* tunables of tests/cluster/README.md.
# Exit status: 0 when every check passed, 1 when one failed, 2 when the bed could not be made.
set -u

here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster/topology.sh
. "$here/topology.sh"

PYTHON=${PYTHON:-python3}
CHAT_SERVER=${CHAT_SERVER:-examples/chat/chat-server}
NATS_SERVER=${NATS_SERVER:-$(command -v nats-server || echo /usr/sbin/nats-server)}

die() {
	echo "cluster: $*" >&2
	exit 2
}

[ -x "$CHAT_SERVER" ] || die "no chat-server at $CHAT_SERVER (make examples/chat/chat-server)"
CHAT_SERVER=$(cd "$(dirname "$CHAT_SERVER")" && pwd)/$(basename "$CHAT_SERVER")
[ -x "$NATS_SERVER" ] || die "nats-server is not installed (Debian: apt-get install nats-server)"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 7))' 2>/dev/null ||
	die "the driver needs Python 3.7 or later ($PYTHON)"

TOPO_RUN=$$
topo_sweep
CLUSTER_STATE=$(topo_state_dir) || die "mktemp failed"
trap 'topo_down' EXIT
trap 'echo "cluster: interrupted; tearing down" >&2; exit 130' INT
trap 'echo "cluster: terminated; tearing down" >&2; exit 143' TERM HUP

topo_choose_mode || exit 2
echo "cluster: $TOPO_MODE mode: $TOPO_WHY"
if ! topo_up; then
	die "could not make the $TOPO_MODE topology"
fi
if [ "$TOPO_MODE" = netns ]; then
	echo "cluster: hosts h1 h2 h3 at $CLUSTER_SUBNET.1-3 (namespaces $(topo_ns h1) ...)," \
		"clients at $CLUSTER_CLIENT_ADDR, subnet $CLUSTER_SUBNET.0/24 on a bridge in" \
		"$(topo_ns sw)"
	run_driver=(ip netns exec "$(topo_ns cl)")
else
	echo "cluster: hosts h1 h2 h3 on 127.0.0.1, each its own ports:" \
		"$(awk '{printf "%s nats %s route %s http %s chat %s; ", $1, $4, $5, $6, $7}' \
			"$CLUSTER_STATE/topology")"
	run_driver=()
fi

# The driver runs in the background so that a signal reaches this shell's trap at once (wait
# returns); the trap then kills the driver and everything else.
PYTHONDONTWRITEBYTECODE=1 "${run_driver[@]}" "$PYTHON" -u "$here/scenarios.py" \
	--state "$CLUSTER_STATE" --chat-server "$CHAT_SERVER" --nats-server "$NATS_SERVER" \
	${CLUSTER_SCENARIOS:+--scenarios "$CLUSTER_SCENARIOS"} \
	${CLUSTER_VARIANTS:+--variants "$CLUSTER_VARIANTS"} &
TOPO_DRIVER=$!
echo "$TOPO_DRIVER scenarios.py" >"$CLUSTER_STATE/pids/driver"
wait "$TOPO_DRIVER"
status=$?
TOPO_DRIVER=
if [ $status -ne 0 ] && [ $status -ne 1 ]; then
	echo "cluster: the driver exited with status $status"
	status=1
fi
topo_down
left=$(topo_leftovers)
if [ -n "$left" ]; then
	echo "cluster: namespaces left behind: $left"
	status=1
fi
exit $status
