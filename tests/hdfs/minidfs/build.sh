#!/usr/bin/env bash
# Builds the MiniDFSCluster harness (see .ci/maven-build.sh): tests then run
#   java -cp target/classes:$(cat target/classpath.txt) strom.minidfs.MiniDfs --dir DIR ...
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../../../.ci/maven-build.sh" "$here" strom/minidfs/MiniDfs.class
