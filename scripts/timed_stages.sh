#!/usr/bin/env bash
# Run make targets in order; print how long each took, and stop at the first
# that fails (its exit status is kept). Used by `make test`.
set -u
names=() times=() status=0
for stage in "$@"; do
  start=$(date +%s%N)
  make --no-print-directory "$stage"
  status=$?
  names+=("$stage")
  times+=($(( ($(date +%s%N) - start) / 100000000 )))  # tenths of a second
  [ "$status" -eq 0 ] || break
done
echo
echo "make test, time per stage:"
for i in "${!names[@]}"; do
  printf '  %-16s %5d.%d s\n' "${names[$i]}" $(( times[i] / 10 )) $(( times[i] % 10 ))
done
if [ "$status" -eq 0 ]; then
  echo "All checks passed."
else
  echo "Stage '${names[-1]}' failed (exit $status)."
fi
exit "$status"
