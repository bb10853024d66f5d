#!/usr/bin/env bash
# Runs a class of the DL4J peer after an (idempotent) build:
#   benches/peers/dl4j/run.sh Bench --case mlp --mode single --train P --test P --json out.json
#   benches/peers/dl4j/run.sh Fixtures OUTDIR
# Relative paths in the arguments are taken from the caller's directory. Extra JVM options go in
# DL4J_JAVA_OPTS (default: -Xmx6g).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"$here/build.sh"
[[ $# -ge 1 ]] || { echo "usage: run.sh {Bench|Fixtures} ARGS..." >&2; exit 2; }
cls=$1
shift
# Java 17: Apache Arrow (DataVec's LocalTransformExecutor) reads java.nio.Buffer.address by
# reflection, so java.nio must be opened to the unnamed module; nd4j itself needs nothing.
# shellcheck disable=SC2086
exec java --add-opens=java.base/java.nio=ALL-UNNAMED ${DL4J_JAVA_OPTS:--Xmx6g} \
  -cp "$here/target/classes:$(cat "$here/target/classpath.txt")" "strom.peer.$cls" "$@"
