#!/usr/bin/env bash
# Builds the MiniDFSCluster harness: target/classes plus target/classpath.txt, so that tests run
#   java -cp target/classes:$(cat target/classpath.txt) strom.minidfs.MiniDfs --dir DIR ...
# with no Maven at test time. Idempotent; does nothing when the outputs are newer than the
# inputs. Needs network (Maven Central) only on the first run: later runs work offline.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v java >/dev/null 2>&1; then
  echo "minidfs/build.sh: java not found (need a JDK 17+: apt-get install openjdk-17-jdk-headless)" >&2
  exit 2
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "minidfs/build.sh: mvn not found (need Maven 3.6+: apt-get install maven)" >&2
  exit 2
fi

stamp=target/classpath.txt
main_class=target/classes/strom/minidfs/MiniDfs.class
if [[ -s $stamp && -f $main_class ]] \
  && [[ -z $(find pom.xml src -newer "$stamp" -print -quit) ]]; then
  # Every jar on the recorded classpath must still be in the local repository.
  ok=1
  IFS=: read -r -a jars < "$stamp" || true
  for j in "${jars[@]}"; do [[ -f $j ]] || { ok=0; break; }; done
  if (( ok )); then
    exit 0
  fi
fi

build() {
  mvn -B -q -Dstyle.color=never "$@" compile dependency:build-classpath \
    -Dmdep.outputFile=target/classpath.txt -Dmdep.includeScope=runtime
}
# Try offline first (works once ~/.m2 holds everything); fall back to Maven Central.
mkdir -p target
if ! build -o > target/build-offline.log 2>&1; then
  if ! build >&2; then
    echo "minidfs/build.sh: maven build failed (offline attempt: target/build-offline.log)" >&2
    exit 1
  fi
fi
# Make the stamp the newest output even when maven left the file untouched.
touch "$stamp"
[[ -f $main_class ]] || { echo "minidfs/build.sh: $main_class missing after build" >&2; exit 1; }
