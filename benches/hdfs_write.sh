#!/usr/bin/env bash
# HDFS writes against local ones, in one run, for one or more strom binaries (to compare a
# build before a change with one after it): saving a model (4 files) and training with
# checkpoints every epoch, on Hadoop's MiniDFSCluster on this machine (tests/hdfs/minidfs,
# built by `bash .ci/test` or the first HDFS test).
#
#   bash benches/hdfs_write.sh [STROM...]        (default: $STROM_BIN or target/release/strom)
#   bash benches/hdfs_write.sh --quick [STROM...]   # one save each, a 1-epoch job: checks it runs (CI)
#
# Prints, per binary: the time to save the demo model locally and to HDFS (medians of 3; the
# save is the difference between `strom train --epochs 1 --output DIR` runs, training being
# identical), and a 2-worker, 6-epoch job with no checkpoints, checkpoints on local disk and
# on HDFS: wall time and the samples/s the job reports.
set -euo pipefail
cd "$(dirname "$0")/.."
repeats=3 epochs=6
if [ "${1:-}" = "--quick" ]; then repeats=1 epochs=1; shift; fi
bins=("$@")
[ ${#bins[@]} -gt 0 ] || bins=("${STROM_BIN:-target/release/strom}")
harness=tests/hdfs/minidfs/target
[ -f "$harness/classpath.txt" ] || { echo "build the MiniDFS harness first (bash .ci/test, or cargo test --test hdfs)" >&2; exit 1; }
work=$(mktemp -d)
trap 'kill $dfs_pid 2>/dev/null || true; rm -rf "$work"' EXIT
mkfifo "$work/ready"
HADOOP_USER_NAME=hdfs java -Xmx1g -cp "$harness/classes:$(cat $harness/classpath.txt)" strom.minidfs.MiniDfs \
  --dir "$work/dfs" >"$work/ready" 2>"$work/dfs.log" < <(sleep 100000) &
dfs_pid=$!
read -r line <"$work/ready"
nn=$(sed -n 's/.*url=\([^ ]*\).*/\1/p' <<<"$line")
[ -n "$nn" ] || { echo "MiniDFS did not start: $line" >&2; exit 1; }
now() { date +%s.%N; }
sub() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a - b }'; }
median() { sort -g | sed -n "$(( (repeats + 1) / 2 ))p"; }
run=0
for bin in "${bins[@]}"; do
  echo "== $bin ($("$bin" --version))"
  for target in local hdfs; do
    for i in $(seq $repeats); do
      run=$((run + 1))
      out=$work/out-$run; [ $target = hdfs ] && out=$nn/bench/out-$run
      t0=$(now); "$bin" train --epochs 1 --output "$out" >/dev/null 2>&1; t1=$(now)
      sub "$t1" "$t0"; echo
    done | median > "$work/save-$target"
  done
  printf 'save the demo model (4 files): local %.2f s, HDFS %.2f s, difference %.2f s\n' \
    "$(cat $work/save-local)" "$(cat $work/save-hdfs)" "$(sub "$(cat $work/save-hdfs)" "$(cat $work/save-local)")"
  for ck in none local hdfs; do
    run=$((run + 1))
    args=(train --epochs $epochs --workers 2 --launcher local --output "$work/m-$run" --summary-json "$work/s-$run.json")
    [ $ck = local ] && args+=(--checkpoint-dir "$work/ck-$run")
    [ $ck = hdfs ] && args+=(--checkpoint-dir "$nn/bench/ck-$run")
    t0=$(now); "$bin" "${args[@]}" >/dev/null 2>&1; t1=$(now)
    printf '2 workers, %d epochs, checkpoints %-5s: %.2f s wall, %s samples/s\n' "$epochs" "$ck" "$(sub "$t1" "$t0")" \
      "$(python3 -c "import json;print(round(json.load(open('$work/s-$run.json'))['samples_per_sec']))")"
  done
done
