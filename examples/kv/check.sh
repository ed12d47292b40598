#!/bin/sh
# check.sh: runs examples/kv twice. With shards that never fail, every answer must match what
# its client stored, and the totals are known in advance (each client's requests follow from
# its seeds alone, so they change only with kv.c's defaults). With a shard failing on its 50th
# request, the supervisor must restart shards, and the run must still end with no wrong answer
# (kv itself exits non-zero on one, or when its counts do not add up).
set -eu
kv=./examples/kv/kv

rc=0
out=$($kv) || rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
	echo "FAIL: kv exited $rc with shards that never fail"
	exit 1
fi
want="total: 8000 ops (3997 puts, 3223 gets, 780 deletes), 8000 answers (2554 hits, 669 misses, 0 lost to restarts, 0 wrong); errors: 0 ESRCH, 0 ETIMEDOUT, 0 no shard by name; 0 retries; 0 restarts, 0 shard failures"
if [ "$(echo "$out" | grep '^total:')" != "$want" ]; then
	echo "FAIL: the totals are not"
	echo "$want"
	exit 1
fi

out=$($kv --crash-every 50) || rc=$?
echo "$out"
if [ $rc -ne 0 ]; then
	echo "FAIL: kv --crash-every 50 exited $rc"
	exit 1
fi
restarts=$(echo "$out" | sed -n 's/^total: .* \([0-9]*\) restarts, .*/\1/p')
if [ -z "$restarts" ] || [ "$restarts" -eq 0 ]; then
	echo "FAIL: no shard was restarted"
	exit 1
fi
echo "$out" | grep -q '^total: .* 0 wrong)' || { echo "FAIL: wrong answers"; exit 1; }
echo "check.sh: kv passed both runs ($restarts restarts in the second)"
