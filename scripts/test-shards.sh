#!/usr/bin/env bash
# `make test`: the suite in TEST_SHARDS parts run at once (2 by default; 1 runs it in one
# process). Each part is a pytest process of its own (`--mae-shard K/N`, tests/conftest.py:
# whole files, dealt out by weight; everything on the real control plane in part 1) with its own
# database, vhost and Redis prefix. Each part's output is printed whole when it ends, in order;
# the exit status is the first failing part's.
set -u
n=${TEST_SHARDS:-2}
py=${PY:-.venv/bin/python}
if [ "$n" -le 1 ]; then exec "$py" -m pytest "$@"; fi
# Job control: without it bash starts background commands with SIGINT ignored, and every
# process a test starts would inherit that (a CLI test's Ctrl-C would do nothing).
set -m
dir=.run/test-shards
mkdir -p "$dir"
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; exit 130' INT TERM
for k in $(seq 1 "$n"); do
  "$py" -m pytest --mae-shard "$k/$n" "$@" > "$dir/part-$k.log" 2>&1 &
  pids+=($!)
done
echo "running the suite in $n parts at once (logs in $dir/)"
rc=0
for k in $(seq 1 "$n"); do
  wait "${pids[$((k - 1))]}"
  r=$?
  echo "==================================== part $k of $n: exit $r ===================================="
  cat "$dir/part-$k.log"
  # 5: this part had nothing to run (e.g. a -k that matches only the other part's files)
  if [ "$r" -ne 0 ] && [ "$r" -ne 5 ] && [ "$rc" -eq 0 ]; then rc=$r; fi
done
exit "$rc"
