#!/usr/bin/env bash
# A generated CSV larger than 1 GB through `strom transform` (parse, filter, one-hot,
# standardise, min-max, write): the executor streams, so peak RSS stays far below the file.
#   bash benches/etl_memory.sh [ROWS]     (default 34,000,000 rows, about 1.1 GB)
#   bash benches/etl_memory.sh --quick    # 20,000 rows: checks the script runs (CI)
# STROM_BIN picks the binary (default target/release/strom).
# Needs python3 and a release build (cargo build --release). Fails if peak RSS > 200 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
rows="${1:-34000000}"
[ "$rows" = --quick ] && rows=20000
bin="${STROM_BIN:-target/release/strom}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 benches/etl_vs_pandas.py --generate "$work/big.csv" --rows "$rows"
size_mb=$(( $(stat -c %s "$work/big.csv") / 1000000 ))
python3 - "$work/tp.json" <<'EOF'
import json, sys
sys.path.insert(0, "benches")
from etl_vs_pandas import PROCESS
json.dump(PROCESS, open(sys.argv[1], "w"))
EOF
/usr/bin/time -f '%M %e' -o "$work/time" "$bin" transform --process "$work/tp.json" \
    --input "$work/big.csv" --output "$work/out.csv" --summary-json "$work/summary.json"
read -r peak_kb seconds < "$work/time"
peak_mb=$(( peak_kb / 1024 ))
echo "input ${size_mb} MB, ${rows} rows: ${seconds} s, peak RSS ${peak_mb} MB (limit 200 MB)"
if (( peak_mb > 200 )); then
    echo "FAIL: peak RSS above 200 MB" >&2
    exit 1
fi
