#!/bin/sh
# readme.sh: every C program README.md shows whole is the example that `make` builds and
# `make check` runs. A code block whose first line is "/* NAME.c: ..." must be, byte for byte,
# the file examples/*/NAME.c.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/readme.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Writes each such block to $work/NAME.c.
awk -v dir="$work" '
	/^```/ { if (out != "") close(out); inblock = ($0 == "```c"); first = 1; out = ""; next }
	inblock && first { first = 0; if (match($0, /^\/\* [a-z0-9_]+\.c:/)) out = dir "/" substr($0, 4, RLENGTH - 4) }
	inblock && out != "" { print > out }
' "$top/README.md"

checked=0
for block in "$work"/*.c; do
	[ -e "$block" ] || break
	name=$(basename "$block")
	file=$(ls "$top"/examples/*/"$name" 2>/dev/null | head -n 1)
	if [ -z "$file" ]; then
		echo "FAIL: README.md shows $name, which is no file under examples/"
		exit 1
	fi
	if ! diff -u "$file" "$block"; then
		echo "FAIL: README.md's $name differs from ${file#"$top"/} (diff above)"
		exit 1
	fi
	checked=$((checked + 1))
done
if [ "$checked" -eq 0 ]; then
	echo "FAIL: README.md shows no example program whole"
	exit 1
fi
echo "readme.sh: $checked program(s) in README.md match their examples"
