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
# shellcheck source=tests/chat/irssi_lib.sh
. "$(dirname "$0")/irssi_lib.sh"
need_tools irssi tmux
setup_work irssi

# Start the server on a free port.
"$server" --port 0 --motd "$top/examples/chat/motd.txt" >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
wait_for '^PORT ' 10 "$work/server.out" || fail "the server did not start"
port=$(awk '/^PORT/ {print $2}' "$work/server.out")

# The raw client: bash's /dev/tcp, its input logged to a file.
raw_connect "$port"
printf 'NICK rawsock\r\nUSER raw 0 * :Raw Socket\r\nJOIN #irssi\r\n' >&3
wait_for ' 366 rawsock #irssi ' 10 "$work/raw.log" || fail "the raw client did not join"
grep -q ' 372 rawsock :- Welcome to the libactor chat server.' "$work/raw.log" || fail "no MOTD"

# irssi, headless, with its own config directory: nothing of the user's is read or written.
irssi_start irssitest irssitest "irssi test"
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
