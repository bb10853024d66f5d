#!/usr/bin/env bash
# Builds the Deeplearning4j peer (benchmark + fixture generator): target/classes plus
# target/classpath.txt, so that one runs
#   java -cp target/classes:$(cat target/classpath.txt) strom.peer.Bench ...
#   java -cp target/classes:$(cat target/classpath.txt) strom.peer.Fixtures OUTDIR
# (or ./run.sh Bench ... / ./run.sh Fixtures OUTDIR) with no Maven at run time. Idempotent; does
# nothing when the outputs are newer than the inputs. Needs network (Maven Central) only on the
# first run (~160 MiB of jars into ~/.m2: DL4J, ND4J CPU backend + OpenBLAS for linux-x86_64);
# later runs work offline.
# The build itself: .ci/maven-build.sh.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exec bash "$here/../../../.ci/maven-build.sh" "$here" strom/peer/Bench.class strom/peer/Fixtures.class
