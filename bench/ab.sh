#!/bin/sh
# ab.sh: libactor against libactor: the same benchmarks from two builds, alternating, for "no
# regression" claims. Build the previous commit in a second tree (a git worktree, say) and
# run from this one:
#
#   bench/ab.sh OLD_BUILDDIR NEW_BUILDDIR [rounds] [benchmark...]
#
# Each round runs every benchmark once from each build, old then new (so slow drifts of the
# machine hit both alike). Prints one line per RESULT name: the median of each build over the
# rounds, their min-max, and new/old oriented so that >1 means the new build did better
# (rates: new/old; times and sizes: old/new). Set AB_NOISY=1 to run everything with one busy
# process pinned to the last CPU, as bench/noisy.sh does.
set -u

old=$(cd "$1" && pwd)
new=$(cd "$2" && pwd)
rounds=${3:-5}
shift 3 2>/dev/null || shift $#
benches=${*:-"pingpong counting threadring chameneos big fork_join_throughput fork_join_create skynet spawn_idle"}
out=$(mktemp)
hog=""
cleanup() {
	[ -n "$hog" ] && kill "$hog" 2>/dev/null
	rm -f "$out"
}
trap cleanup EXIT INT TERM

if [ "${AB_NOISY:-0}" = 1 ]; then
	last=$(($(nproc) - 1))
	taskset -c "$last" sh -c 'while :; do :; done' &
	hog=$!
	echo "ab.sh: busy process $hog on CPU $last" >&2
fi

for r in $(seq 1 "$rounds"); do
	for b in $benches; do
		for side in old new; do
			dir=$old
			[ "$side" = new ] && dir=$new
			"$dir/bench/$b" 2>/dev/null | sed -n "s/^RESULT /$side /p" >>"$out" ||
				echo "ab.sh: $side $b failed" >&2
		done
	done
	echo "ab.sh: round $r of $rounds done" >&2
done

# Lines: "<side> name=... impl=... metric=... value=... unit=..."
awk '
function field(s, k,   n, i, kv) {
	n = split(s, kv, " ")
	for (i = 1; i <= n; i++)
		if (index(kv[i], k "=") == 1)
			return substr(kv[i], length(k) + 2)
	return ""
}
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++)
		for (j = i + 1; j <= n; j++)
			if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	lo[0] = a[1]; hi[0] = a[n]
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
	key = field($0, "name") " " field($0, "metric")
	unit[key] = field($0, "unit")
	vals[$1, key] = vals[$1, key] " " field($0, "value")
	if (!(key in seen)) { seen[key] = 1; order[++nk] = key }
}
END {
	printf "%-40s %-6s %14s %-23s %14s %-23s %s\n", "benchmark metric", "unit", "old", "(min-max)", "new", "(min-max)", "new vs old"
	for (k = 1; k <= nk; k++) {
		key = order[k]
		if (!((("old", key) in vals) && (("new", key) in vals)))
			continue
		mo = median(vals["old", key]); lo_o = lo[0]; hi_o = hi[0]
		mn = median(vals["new", key]); lo_n = lo[0]; hi_n = hi[0]
		u = unit[key]
		better = (u == "ms" || u == "B") ? (mn > 0 ? mo / mn : 0) : (mo > 0 ? mn / mo : 0)
		printf "%-40s %-6s %14.6g %-23s %14.6g %-23s %.3fx\n", key, u, mo, "(" lo_o "-" hi_o ")", mn, "(" lo_n "-" hi_n ")", better
	}
}' "$out"
