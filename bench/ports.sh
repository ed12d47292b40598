# ports.sh: loopback ports for the chat benchmarks, sourced by bench/chat_compare.sh and
# bench/cluster.sh (bash).

# A port nothing listens on (bash's /dev/tcp: a refused connection means free), below the
# ephemeral range, where the idle load's ten thousand connections leave their local ports.
free_port() {
	local p low
	low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
	[ "$low" -gt 12000 ] || low=32768
	for _ in $(seq 1 200); do
		p=$((10000 + RANDOM % (low - 10000)))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# Waits until something accepts connections on the port.
wait_port() {
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

