#!/bin/sh
# run.sh: runs irctest, the IRC server conformance suite, against chat-server through our
# controller (chat_server_controller.py beside this script). `make irctest` calls it.
#
# env:  IRCTEST_DIR   an irctest checkout (required); it is left untouched: the tests run from
#                     a copy in a temporary folder
#       CHAT_SERVER   the chat-server binary (required)
#       IRCTEST_EXPECT_PASSED
#                     the floor: fail only when fewer tests than this pass. Empty: fail when
#                     any test fails
#       PYTHON        a python3 that imports pytest (default: the first on the PATH that does)
#       MARKERS, TESTS
#                     pytest's -m expression and the test modules (irctest/server_tests/*.py);
#                     the defaults are below
#       T             time limit for the whole run, seconds (default 1800)
#
# Without irctest or pytest it says so and exits 0. Otherwise the last line it prints is the
# count, e.g. "103 passed, 32 failed, 69 skipped".
#
# irctest's conftest.py ends with a hook declared @pytest.hookimpl(wrapper=True), which pytest
# before 8 rejects (Debian 12 has 7.2). With such a pytest the copy's conftest.py goes without
# it: the hook only turns some skips into errors for servers that promise a behaviour.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${IRCTEST_DIR:?IRCTEST_DIR must name an irctest checkout}"
: "${CHAT_SERVER:?CHAT_SERVER must name the chat-server binary}"
MARKERS=${MARKERS:-not Ergo and not deprecated and not strict and not services}
TESTS=${TESTS:-connection_registration join part messages pingpong quit names buffering readq \
regressions topic who isupport away away_notify cap echo_message extended_join invite kick list \
lusers message_tags multi_prefix oper labeled_responses setname statusmsg time utf8 whois \
wallops kill channel info help}
T=${T:-1800}

if [ ! -f "$IRCTEST_DIR/conftest.py" ] || [ ! -d "$IRCTEST_DIR/irctest/server_tests" ]; then
	echo "irctest: skipped: no irctest checkout at $IRCTEST_DIR (set IRCTEST_DIR)"
	exit 0
fi
if [ -z "${PYTHON:-}" ]; then
	# The first python3 on the PATH that imports pytest: Debian's python3-pytest serves
	# /usr/bin/python3, which another python3 earlier on the PATH may hide.
	PYTHON=python3
	saved_ifs=$IFS
	IFS=:
	for d in $PATH; do
		if [ -x "${d:-.}/python3" ] && "${d:-.}/python3" -c 'import pytest' 2>/dev/null; then
			PYTHON=${d:-.}/python3
			break
		fi
	done
	IFS=$saved_ifs
fi
if ! "$PYTHON" -c 'import pytest' 2>/dev/null; then
	echo "irctest: skipped: $PYTHON cannot import pytest (Debian: apt-get install python3-pytest)"
	exit 0
fi
case ${IRCTEST_EXPECT_PASSED:-} in
*[!0-9]*) echo "irctest: IRCTEST_EXPECT_PASSED must be a number of tests" >&2; exit 2 ;;
esac

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$IRCTEST_DIR" && tar --exclude=.git -cf - .) | (cd "$work" && tar -xf -)
chmod -R u+w "$work" # the checkout may be read-only; its copy gets edited and removed

"$PYTHON" - "$work/conftest.py" <<'EOF'
import sys

import pytest

path = sys.argv[1]
if int(pytest.__version__.split(".")[0]) < 8:
    lines = open(path).read().split("\n")
    marks = [i for i, l in enumerate(lines) if l.startswith("@pytest.hookimpl(wrapper=True)")]
    if marks:
        start = marks[0]
        end = start + 2  # the decorator and the def line
        while end < len(lines) and (lines[end] == "" or lines[end][0] in " \t"):
            end += 1
        print("# conftest.py: without %s (pytest %s has no wrapper hooks)"
              % (lines[start + 1].split("(")[0][4:], pytest.__version__))
        open(path, "w").write("\n".join(lines[:start] + lines[end:]).rstrip("\n") + "\n")
EOF

files=
for t in $TESTS; do
	[ -f "$work/irctest/server_tests/$t.py" ] || {
		echo "irctest: no test module irctest/server_tests/$t.py in $IRCTEST_DIR" >&2
		exit 2
	}
	files="$files irctest/server_tests/$t.py"
done

echo "# irctest against $CHAT_SERVER; -m '$MARKERS'"
# The output is shown as it comes and kept for the count; pytest's status goes through a file
# (/bin/sh has no pipefail). No bytecode is written: the controller's folder is the source tree.
echo 0 >"$work/pytest.rc"
# shellcheck disable=SC2086
{ (cd "$work" && CHAT_SERVER=$CHAT_SERVER PYTHONPATH="$work:$here${PYTHONPATH:+:$PYTHONPATH}" \
	PYTHONDONTWRITEBYTECODE=1 timeout "$T" "$PYTHON" -m pytest -p no:cacheprovider \
	--controller chat_server_controller -m "$MARKERS" -rfEs --tb=short $files) 2>&1 ||
	echo $? >"$work/pytest.rc"; } | tee "$work/pytest.out"
rc=$(cat "$work/pytest.rc")
[ "$rc" -eq 124 ] && echo "# pytest did not finish within $T s"

# pytest's summary line: "=== 103 passed, 32 failed, 69 skipped, 1 deselected in 92.1s ===".
summary=$(grep -E '^=+ .*[0-9]+ (passed|failed|skipped|errors?|deselected).* in [0-9.]+s' \
	"$work/pytest.out" | tail -n 1 || true)
count() {
	n=$(printf '%s\n' "$summary" | grep -Eo "[0-9]+ $1" | head -n 1 | cut -d' ' -f1)
	echo "${n:-0}"
}
passed=$(count passed)
failed=$(count failed)
skipped=$(count skipped)
errors=$(count 'errors?')
line="$passed passed, $failed failed, $skipped skipped"
[ "$errors" -eq 0 ] || line="$line, $errors errors"

if [ -z "$summary" ]; then
	echo "irctest: no pytest summary (see above)"
	status=1
elif [ -n "${IRCTEST_EXPECT_PASSED:-}" ]; then
	if [ "$passed" -lt "$IRCTEST_EXPECT_PASSED" ]; then
		echo "irctest: $passed passed, fewer than the $IRCTEST_EXPECT_PASSED expected" \
			"(IRCTEST_EXPECT_PASSED)"
		status=1
	else
		echo "irctest: at least the $IRCTEST_EXPECT_PASSED expected passed" \
			"(IRCTEST_EXPECT_PASSED)"
		status=0
	fi
else
	status=$rc
fi
echo "$line"
exit "$status"
