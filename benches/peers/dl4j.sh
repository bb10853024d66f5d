#!/usr/bin/env bash
# Strom against Deeplearning4j 1.0.0-M2 (ParallelWrapper, shared gradients), side by side in one
# run: builds the DL4J peer (benches/peers/dl4j) and Strom (release), then runs
# benches/peers/dl4j_vs_strom.py with the arguments given here, e.g.
#   bash benches/peers/dl4j.sh                                   # all four cases, full data
#   bash benches/peers/dl4j.sh --quick --cases mlp-single,mlp-parallel
#   bash benches/peers/dl4j.sh --json dl4j-vs-strom.json
# It trains mlp and cnn, one worker and 4 workers, on full Fashion-MNIST (the demo subset where
# it is not installed) in both, and prints samples/s, test accuracy, bytes sent per worker,
# peak RSS and time to the first step for each. Takes about 10-20 minutes on a 2-core machine
# with the defaults (estimated; DL4J's cnn runs dominate); --quick (demo subset, 1 epoch) about
# 2-3 minutes, of which the two mlp cases take 10 s.
# Needs a JDK 17+ and Maven. Nothing is downloaded at run time; the only downloads are the
# Maven dependencies of the DL4J peer on its first build (~160 MiB into ~/.m2).
# STROM_SKIP_BUILD=1 skips the cargo build (uses target/release/strom as it is).
set -euo pipefail
cd "$(dirname "$0")/../.."
benches/peers/dl4j/build.sh
if [[ -z ${STROM_SKIP_BUILD:-} ]]; then
  cargo build --release --quiet
fi
exec python3 benches/peers/dl4j_vs_strom.py "$@"
