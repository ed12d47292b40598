# irssi_lib.sh: what the scripts that drive chat-server with real clients share (irssi.sh,
# tls.sh), sourced by bash: the skip when a tool is missing, the work directory and its cleanup,
# failing with every log there is, waiting for a line, a raw socket client on descriptor 3, and
# irssi headless under tmux. The caller sets `server` first.

# Exits 77 (skip) unless each tool given is installed.
need_tools() {
	local tool
	for tool in "$@"; do
		if ! command -v "$tool" >/dev/null 2>&1; then
			echo "SKIP: $tool not installed (apt-get install -y $*)"
			exit 77
		fi
	done
	if [ ! -x "$server" ]; then
		echo "FAIL: no server at $server"
		exit 1
	fi
}

# Makes $work (mktemp, named after $1) and the tmux socket name $sock, removed at exit with
# whatever the script started: $server_pid, $raw_pid, descriptor 3, tmux.
setup_work() {
	work=$(mktemp -d "${TMPDIR:-/tmp}/chat-$1.XXXXXX")
	sock="chat-$1-$$"
	server_pid=
	raw_pid=
	trap cleanup EXIT
}

cleanup() {
	tmux -L "$sock" kill-server >/dev/null 2>&1
	[ -n "$raw_pid" ] && kill "$raw_pid" >/dev/null 2>&1
	[ -n "$server_pid" ] && kill -KILL "$server_pid" >/dev/null 2>&1
	exec 3>&- 2>/dev/null
	rm -rf "$work"
}

# Fails with every log there is.
fail() {
	echo "FAIL: $*"
	local f
	for f in sclient.log raw.log home/rawlog server.err; do
		[ -s "$work/$f" ] || continue
		echo "--- $f:"
		cat "$work/$f"
	done
	echo "--- irssi window:"
	tmux -L "$sock" capture-pane -p -S -60 2>/dev/null | grep -v '^$'
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

# A raw client on descriptor 3, connected to 127.0.0.1:$1, what it receives in $work/raw.log.
raw_connect() {
	exec 3<>"/dev/tcp/127.0.0.1/$1" || fail "cannot connect to port $1"
	cat <&3 >"$work/raw.log" &
	raw_pid=$!
}

# irssi, headless under tmux, with a config directory of its own ($work/home) and the given
# nick, user name and real name; ready for type_keys once this returns.
irssi_start() {
	mkdir -p "$work/home"
	cat >"$work/home/config" <<EOF
settings = {
  core = { real_name = "$3"; user_name = "$2"; nick = "$1"; };
  "fe-common/core" = { autolog = "no"; };
};
EOF
	tmux -L "$sock" -f /dev/null new-session -d -x 160 -y 48 "irssi --home='$work/home'" ||
		fail "tmux could not start irssi"
	wait_pane 'Irssi v' || fail "irssi did not start"
	# No pause between commands: irssi's own flood control would make the tests slow.
	type_keys "/set cmd_queue_speed 0"
	type_keys "/set cmds_max_at_once 100"
}

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
