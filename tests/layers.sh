#!/bin/sh
# layers.sh: checks, on the built objects, that the library keeps its layers (DESIGN.md,
# Layers): which file calls which is read from the symbols each object defines and uses (nm).
#   1. a reactor backend uses nothing of the library outside libactor/reactor/;
#   2. the core and the scheduler use nothing of libactor/services/, except the list of
#      services (actor__services), which system.c hands to the system as it creates it;
#   3. no two files depend on each other, directly or through others, but core/actor.c and
#      sched/sched.c (a send schedules; a worker runs an actor's turn);
#   4. every public function (actor_*) the objects define is exported by the shared library.
# Fails naming the offending files.
set -eu
srcdir=${srcdir:-.}
top=$(cd "$srcdir" && pwd)
objs=
for o in libactor/*/libactor_core_la-*.o libactor/*/*/libactor_core_la-*.o; do
	[ -f "$o" ] || continue
	name=$(basename "$o" .o)
	name=${name#libactor_core_la-}
	src=$(dirname "$o")/$name.c
	[ -f "$top/$src" ] && objs="$objs $o"
done
if [ -z "$objs" ]; then
	echo "layers.sh: no objects found (build the library first)" >&2
	exit 1
fi
for o in $objs; do
	name=$(basename "$o" .o)
	file=$(dirname "$o")/${name#libactor_core_la-}.c
	file=${file#libactor/}
	nm "$o" | awk -v f="$file" '$2 ~ /^[TDBR]$/ { print "D", f, $3 } $1 == "U" { print "U", f, $2 }'
done | awk '
$1 == "D" { def[$3] = $2; next }
$1 == "U" { use[++n] = $2 " " $3 }
END {
	bad = 0
	for (i = 1; i <= n; i++) {
		split(use[i], p, " ")
		from = p[1]; sym = p[2]
		if (!(sym in def) || def[sym] == from) continue
		to = def[sym]
		if (!((from, to) in edge)) {
			edge[from, to] = sym
			node[from] = 1; node[to] = 1
		}
		if (from ~ /^reactor\// && to !~ /^reactor\//) {
			printf "layers: %s (reactor) uses %s of %s\n", from, sym, to; bad = 1
		}
		if (from ~ /^(core|sched)\// && to ~ /^services\// && sym != "actor__services") {
			printf "layers: %s uses %s of %s (a service)\n", from, sym, to; bad = 1
		}
	}
	for (a in node) for (b in node) reach[a, b] = ((a, b) in edge)
	for (k in node) for (a in node) if (reach[a, k]) for (b in node) if (reach[k, b]) reach[a, b] = 1
	for (a in node) for (b in node) {
		if (a >= b || !reach[a, b] || !reach[b, a]) continue
		if (a == "core/actor.c" && b == "sched/sched.c") continue
		printf "layers: %s and %s depend on each other\n", a, b; bad = 1
	}
	exit bad
}'
so=libactor/.libs/libactor.so
if [ -f "$so" ]; then
	defined=$(for o in $objs; do nm "$o"; done | awk '$2 == "T" && $3 ~ /^actor_[^_]/ { print $3 }' | sort)
	exported=$(nm -D --defined-only "$so" | awk '$3 ~ /^actor_[^_]/ { print $3 }' | sort)
	missing=$(printf '%s\n' "$defined" | comm -23 - "$(printf '%s\n' "$exported" >"${TMPDIR:-/tmp}/layers.$$"; echo "${TMPDIR:-/tmp}/layers.$$")")
	rm -f "${TMPDIR:-/tmp}/layers.$$"
	if [ -n "$missing" ]; then
		echo "layers: public functions the shared library does not export:" $missing
		exit 1
	fi
fi
echo "layers: every file keeps to its layer"
