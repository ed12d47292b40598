#!/bin/bash
# tls.sh: chat-server over TLS. A certificate is made for localhost; the server listens on a
# plain port and a TLS port. OpenSSL's s_client, verifying the certificate, registers and gets
# its PONG; irssi, under tmux with -tls_verify, joins a channel and talks with a plain-TCP
# client in it, both ways. Then the option errors: --tls-port without a certificate, a missing
# certificate file, a key that does not match.
#
# Run from the top build directory (make check does). Exits 77 (skip) when openssl, irssi or
# tmux is missing, or when the library was built without OpenSSL.
set -u

server=${CHAT_SERVER:-examples/chat/chat-server}
# shellcheck source=tests/chat/irssi_lib.sh
. "$(dirname "$0")/irssi_lib.sh"
need_tools openssl irssi tmux
server_abs=$(readlink -f "$server")
setup_work tls

# A certificate for localhost and 127.0.0.1, and a key that is not its own.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
	-subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
	-keyout "$work/key.pem" -out "$work/cert.pem" >/dev/null 2>&1 || fail "openssl req"
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$work/other.pem" \
	>/dev/null 2>&1 || fail "openssl genpkey"

# The option errors first: each exits with a line saying what is wrong.
expect_refusal() { # STATUS PATTERN ARGS...
	local want=$1 pattern=$2
	shift 2
	"$server" --port 0 "$@" >"$work/refused.out" 2>"$work/refused.err"
	local status=$?
	[ "$status" -eq "$want" ] || { cat "$work/refused.err"; fail "$* exited $status, not $want"; }
	grep -q -- "$pattern" "$work/refused.err" || { cat "$work/refused.err"; fail "$*: no '$pattern'"; }
}
"$server" --port 0 --tls-port 0 --cert "$work/missing.pem" --key "$work/missing.pem" \
	>/dev/null 2>"$work/probe.err"
if grep -q "built without OpenSSL" "$work/probe.err"; then
	echo "SKIP: libactor built without OpenSSL"
	exit 77
fi
expect_refusal 2 "needs --cert and --key" --tls-port 0
expect_refusal 2 "for --tls-port" --cert "$work/cert.pem" --key "$work/key.pem"
expect_refusal 1 "cannot read the certificate $work/missing.pem" --tls-port 0 \
	--cert "$work/missing.pem" --key "$work/key.pem"
expect_refusal 1 "does not match" --tls-port 0 --cert "$work/cert.pem" --key "$work/other.pem"

"$server" --port 0 --tls-port 0 --cert "$work/cert.pem" --key "$work/key.pem" \
	>"$work/server.out" 2>"$work/server.err" &
server_pid=$!
wait_for '^TLS_PORT ' 10 "$work/server.out" || fail "the server did not start"
port=$(awk '/^PORT/ {print $2}' "$work/server.out")
tls_port=$(awk '/^TLS_PORT/ {print $2}' "$work/server.out")

# s_client, verifying the server against the certificate itself.
(
	printf 'NICK sclient\r\nUSER s 0 * :S Client\r\nPING :over-tls\r\n'
	for _ in $(seq 1 100); do
		grep -q 'PONG .*over-tls' "$work/sclient.log" 2>/dev/null && break
		sleep 0.1
	done
	printf 'QUIT :done\r\n'
	sleep 0.5
) | openssl s_client -connect "127.0.0.1:$tls_port" -servername localhost -quiet \
	-verify_return_error -CAfile "$work/cert.pem" >"$work/sclient.log" 2>"$work/sclient.err"
grep -q ' 001 sclient ' "$work/sclient.log" || { cat "$work/sclient.err"; fail "s_client was not welcomed"; }
grep -q 'PONG .*over-tls' "$work/sclient.log" || fail "s_client got no PONG"
grep -q 'ERROR :Closing Link' "$work/sclient.log" || fail "s_client's QUIT got no ERROR"

# A plain client in #tls, and irssi over TLS.
raw_connect "$port"
printf 'NICK rawsock\r\nUSER raw 0 * :Raw Socket\r\nJOIN #tls\r\n' >&3
wait_for ' 366 rawsock #tls ' 10 "$work/raw.log" || fail "the raw client did not join"

irssi_start irssitls irssitls "irssi tls"
type_keys "/connect -tls -tls_verify -tls_cafile $work/cert.pem localhost $tls_port"
wait_pane 'Welcome to the libactor Internet Relay Chat Network irssitls' ||
	fail "irssi was not welcomed over TLS"
type_keys "/join #tls"
wait_for ':irssitls!~irssitls@127.0.0.1 JOIN #tls' 10 "$work/raw.log" || fail "irssi did not join"
type_keys "hello over tls"
wait_for 'PRIVMSG #tls :hello over tls' 10 "$work/raw.log" ||
	fail "the plain client did not get irssi's message"
printf 'PRIVMSG #tls :hello back in plain text\r\n' >&3
wait_pane 'rawsock> hello back in plain text' || fail "irssi's window does not show the reply"
type_keys "/quit tls tested"
wait_for 'QUIT :Quit: tls tested' 10 "$work/raw.log" || fail "irssi's QUIT was not relayed"

kill -TERM "$server_pid"
exec 3>&-
wait "$server_pid"
status=$?
server_pid=
[ "$status" -eq 0 ] || fail "the server exited with $status"

# The same from a configuration file, whose paths are relative to its folder.
if "$server" --help | grep -q "not in this build"; then
	echo "PASS: s_client and irssi over TLS, beside a plain client; option errors refused"
	echo "(no --config in this build: inih missing)"
	exit 0
fi
mkdir -p "$work/conf"
mv "$work/cert.pem" "$work/key.pem" "$work/conf/"
printf '[server]\nport = 0\n[tls]\nport = 0\ncert = cert.pem\nkey = key.pem\n' \
	>"$work/conf/chat.conf"
(cd / && exec "$server_abs" --config "$work/conf/chat.conf" >"$work/server.out" 2>"$work/server.err") &
server_pid=$!
wait_for '^TLS_PORT ' 10 "$work/server.out" || fail "the server did not start from its file"
tls_port=$(awk '/^TLS_PORT/ {print $2}' "$work/server.out")
printf 'NICK conf\r\nUSER c 0 * :C\r\nQUIT\r\n' | openssl s_client -quiet \
	-connect "127.0.0.1:$tls_port" -verify_return_error -CAfile "$work/conf/cert.pem" \
	>"$work/sclient.log" 2>"$work/sclient.err"
grep -q ' 001 conf ' "$work/sclient.log" || fail "no welcome over TLS from the file's settings"
kill -TERM "$server_pid"
wait "$server_pid"
status=$?
server_pid=
[ "$status" -eq 0 ] || fail "the server exited with $status"
echo "PASS: s_client and irssi over TLS, beside a plain client; option errors refused"
exit 0
