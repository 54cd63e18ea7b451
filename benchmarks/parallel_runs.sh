#!/bin/bash
# Run many addition-attack runs side by side, one thread each, on a machine with many cores
# (the configuration sweep in docs/addition-attack.md ran this way on a 16-core machine:
# plans/sweep_addition.txt; plans/addition_7500.txt holds every run of the full benchmarks).
# Each line of the plan file is: OUT_DIR [banel run options...]. Run directories are the ones
# benchmarks/addition_attack.py, compute_scaling.py and compare_addition.py read back (they
# skip finished runs), so those scripts then print the tables without running anything again.
#
#   bash benchmarks/parallel_runs.sh PLAN_FILE [TIMEOUT_SECONDS]
set -u
plan=$1; limit=${2:-3600}
export OMP_NUM_THREADS=1 OMP_WAIT_POLICY=PASSIVE MKL_NUM_THREADS=1
while read -r out rest; do
  [ -z "$out" ] && continue
  mkdir -p "$(dirname "$out")"
  # shellcheck disable=SC2086
  timeout "$limit" banel run --task addition-attack --out "$out" -q $rest > "$out.log" 2>&1 &
done < "$plan"
wait
echo "all runs ended"
