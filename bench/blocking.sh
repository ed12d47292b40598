#!/bin/sh
# blocking.sh: bench/blocking_roundtrip against its libuv peer, alternately. `make bench-blocking`.
#
# Usage: bench/blocking.sh [builddir] [rounds] [jobs]   (defaults: ., 5, the programs' own)
#
# Each round runs the libactor program, then libuv's (bench/peers/libuv/blocking_roundtrip), so
# that a slow drift of the machine hits both alike. Prints the RESULT lines as they come (on
# stderr), then one line per row: each side's median over the rounds with its min-max, the
# ratio of the medians, and the range of the per-round ratios (libactor / libuv, >1: libactor
# did more jobs per second).
set -u

dir=$(cd "${1:-.}" && pwd)
rounds=${2:-5}
jobs=${3:-}
peer=$dir/bench/peers/libuv/blocking_roundtrip
if [ ! -x "$peer" ]; then
	echo "blocking.sh: no libuv peer in $dir (configure found no libuv: install libuv1-dev)" >&2
	exit 77
fi
out=$(mktemp)
trap 'rm -f "$out"' EXIT INT TERM

for r in $(seq 1 "$rounds"); do
	for prog in "$dir/bench/blocking_roundtrip" "$peer"; do
		# shellcheck disable=SC2086 # $jobs is one optional word
		"$prog" $jobs 2>/dev/null | sed -n "s/^RESULT /$r /p" | tee -a "$out" >&2 ||
			echo "blocking.sh: $prog failed" >&2
	done
done

# Lines: "<round> name=... impl=... metric=... value=... unit=..."
awk '
function field(s, k,   n, i, kv) {
	n = split(s, kv, " ")
	for (i = 1; i <= n; i++)
		if (index(kv[i], k "=") == 1)
			return substr(kv[i], length(k) + 2)
	return ""
}
function sort(list, a,   n, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++)
		for (j = i + 1; j <= n; j++)
			if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n
}
function median(list,   a, n) {
	n = sort(list, a)
	lo = a[1]; hi = a[n]
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	name = field($0, "name"); impl = field($0, "impl"); v = field($0, "value")
	vals[name, impl] = vals[name, impl] " " v
	round[name, impl, $1] = v
	if (!(name in seen)) { seen[name] = 1; order[++nn] = name }
	rounds[$1] = 1
}
END {
	printf "%-22s %12s %-21s %12s %-21s %7s %s\n", "jobs/s", "libactor", "(min-max)", "libuv", "(min-max)", "ratio", "(per round)"
	for (k = 1; k <= nn; k++) {
		name = order[k]
		ma = median(vals[name, "libactor"]); la = lo; ha = hi
		mu = median(vals[name, "libuv"]); lu = lo; hu = hi
		rmin = ""; rmax = ""
		for (r in rounds) {
			if (!(((name, "libactor", r) in round) && ((name, "libuv", r) in round)))
				continue
			x = round[name, "libactor", r] / round[name, "libuv", r]
			if (rmin == "" || x < rmin) rmin = x
			if (rmax == "" || x > rmax) rmax = x
		}
		printf "%-22s %12.0f %-21s %12.0f %-21s %6.2fx (%.2f-%.2f)\n", name, ma, "(" la "-" ha ")", mu, "(" lu "-" hu ")", (mu > 0 ? ma / mu : 0), rmin, rmax
	}
}' "$out"
