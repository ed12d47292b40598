#!/bin/bash
# irssi.sh: a real IRC client against the chat server. irssi runs headless in a tmux session,
# connects, registers (CAP LS, NICK, USER), joins #irssi and says something; a raw socket
# client in the same channel must receive it, and irssi's window must show what the raw client
# says back. irssi's own traffic (its rawlog) must hold no error numeric from the server.
#
# Run from the top build directory (make check does). Exits 77 (skip) when irssi or tmux is
# missing (Debian: apt-get install -y irssi tmux).
set -u

server=${CHAT_SERVER:-examples/chat/chat-server}
top=$(cd "$(dirname "$0")/../.." && pwd)
for tool in irssi tmux; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "SKIP: $tool not installed (apt-get install -y irssi tmux)"
		exit 77
	fi
done
if [ ! -x "$server" ]; then
	echo "FAIL: no server at $server"
	exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/chat-irssi.XXXXXX")
sock="chat-irssi-$$"
server_pid=
raw_pid=
cleanup() {
	tmux -L "$sock" kill-server >/dev/null 2>&1
	[ -n "$raw_pid" ] && kill "$raw_pid" >/dev/null 2>&1
	[ -n "$server_pid" ] && kill -KILL "$server_pid" >/dev/null 2>&1
	exec 3>&- 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

fail() {
	echo "FAIL: $*"
	echo "--- raw client received:"; cat "$work/raw.log" 2>/dev/null
	echo "--- irssi traffic:"; cat "$work/home/rawlog" 2>/dev/null
	echo "--- irssi window:"; tmux -L "$sock" capture-pane -p -S -60 2>/dev/null | grep -v '^$'
	echo "--- server:"; cat "$work/server.err" 2>/dev/null
	exit 1
}

# Waits up to $2 seconds (default 10) for `grep -q -- "$1" FILE` (FILE = $3).
wait_for() {
	local i
	for i in $(seq 1 $((${2:-10} * 10))); do
		grep -q -- "$1" "$3" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# Start the server on a free port.
"$server" --port 0 --motd "$top/examples/chat/motd.txt" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
wait_for '^PORT ' 10 "$work/server.out" || fail "the server did not start"
port=$(awk '/^PORT/ {print $2}' "$work/server.out")

# The raw client: bash's /dev/tcp, its input logged to a file.
exec 3<>"/dev/tcp/127.0.0.1/$port" || fail "cannot connect to port $port"
cat <&3 >"$work/raw.log" &
raw_pid=$!
printf 'NICK rawsock\r\nUSER raw 0 * :Raw Socket\r\nJOIN #irssi\r\n' >&3
wait_for ' 366 rawsock #irssi ' 10 "$work/raw.log" || fail "the raw client did not join"
grep -q ' 372 rawsock :- Welcome to the libactor chat server.' "$work/raw.log" || fail "no MOTD"

# irssi, headless. Its own config directory, so nothing of the user's is read or written.
# No pause between commands: irssi's own flood control would make the test slow.
mkdir -p "$work/home"
cat >"$work/home/config" <<EOF
settings = {
  core = { real_name = "irssi test"; user_name = "irssitest"; nick = "irssitest"; };
  "fe-common/core" = { autolog = "no"; };
};
EOF
tmux -L "$sock" -f /dev/null new-session -d -x 160 -y 48 "irssi --home='$work/home'" ||
	fail "tmux could not start irssi"
type_keys() { tmux -L "$sock" send-keys -l -- "$1" && tmux -L "$sock" send-keys Enter; }
pane_has() { tmux -L "$sock" capture-pane -p -S -100 2>/dev/null | grep -q -- "$1"; }
wait_pane() {
	local i
	for i in $(seq 1 100); do
		pane_has "$1" && return 0
		sleep 0.1
	done
	return 1
}

wait_pane 'Irssi v' || fail "irssi did not start"
type_keys "/set cmd_queue_speed 0"
type_keys "/set cmds_max_at_once 100"
type_keys "/connect 127.0.0.1 $port"
wait_pane 'Welcome to the libactor Internet Relay Chat Network irssitest' ||
	fail "irssi was not welcomed"
type_keys "/join #irssi"
wait_for ':irssitest!~irssitest@127.0.0.1 JOIN #irssi' 10 "$work/raw.log" ||
	fail "irssi did not join #irssi"
type_keys "hello from irssi"
wait_for ':irssitest!~irssitest@127.0.0.1 PRIVMSG #irssi :hello from irssi' 10 "$work/raw.log" ||
	fail "the raw client did not receive irssi's message"

printf 'PRIVMSG #irssi :hello back, irssi\r\n' >&3
wait_pane 'rawsock> hello back, irssi' || fail "irssi's window does not show the raw client's message"

type_keys "/whois rawsock"
printf 'MODE #irssi +o irssitest\r\n' >&3 # the raw client made the channel: it runs it
wait_for 'MODE #irssi +o irssitest' 10 "$work/raw.log" || fail "no MODE +o"
type_keys "/topic #irssi tested by irssi"
wait_for 'TOPIC #irssi :tested by irssi' 10 "$work/raw.log" || fail "irssi could not set the topic"
type_keys "/rawlog save $work/home/rawlog" # irssi's last lines of traffic, from the start
for i in $(seq 1 50); do [ -s "$work/home/rawlog" ] && break; sleep 0.1; done
grep -q '^<< CAP LS' "$work/home/rawlog" || fail "irssi's traffic was not saved"
# Error numerics (4xx, 5xx) in irssi's traffic mean the server refused something it sent. The
# one expected: 451 for the "JOIN :" irssi sends during CAP negotiation, before registering.
if grep -E '^>> :[^ ]+ [45][0-9][0-9] ' "$work/home/rawlog" | grep -v ' 451 '; then
	fail "irssi was sent error numerics"
fi

type_keys "/quit tested"
wait_for ':irssitest!~irssitest@127.0.0.1 QUIT :Quit: tested' 10 "$work/raw.log" ||
	fail "irssi's QUIT was not relayed"

kill -TERM "$server_pid"
wait_for 'ERROR :Closing Link: 127.0.0.1 (Server shutting down)' 10 "$work/raw.log" ||
	fail "no ERROR before the server closed"
exec 3>&-
wait "$server_pid"
status=$?
server_pid=
[ "$status" -eq 0 ] || fail "the server exited with $status"
echo "PASS: irssi registered, joined, talked and quit"
exit 0
