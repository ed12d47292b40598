#!/bin/sh
# deps.sh: installs what building and testing libactor needs on Debian 12 (apt-get; uses sudo
# when not run as root).
set -eu
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
	build-essential autoconf automake libtool pkg-config \
	libck-dev libjemalloc-dev liburing-dev libinih-dev libc-ares-dev libssl-dev check libuv1-dev \
	clang libclang-rt-14-dev irssi tmux openssl libnats-dev nats-server python3 iproute2 >/dev/null
echo "deps.sh: build dependencies installed"
