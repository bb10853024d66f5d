#!/usr/bin/env bash
# Builds a small Maven project of this repository (the MiniDFS harness, the DL4J peer) into
# target/classes plus target/classpath.txt, so it runs as
#   java -cp DIR/target/classes:$(cat DIR/target/classpath.txt) MAIN ...
# with no Maven at run time. Idempotent: does nothing when the outputs are newer than pom.xml and
# src/ and every recorded jar is still in ~/.m2. Needs Maven Central on the first run only.
#   usage: .ci/maven-build.sh PROJECT_DIR CLASS_FILE...   (class files relative to target/classes)
set -euo pipefail
dir=$1
shift
name="$(basename "$dir")/build.sh"
cd "$dir"

if ! command -v java >/dev/null 2>&1; then
  echo "$name: java not found (need a JDK 17+: apt-get install openjdk-17-jdk-headless)" >&2
  exit 2
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "$name: mvn not found (need Maven 3.6+: apt-get install maven)" >&2
  exit 2
fi

stamp=target/classpath.txt
built() {
  local c
  for c in "$@"; do [[ -f target/classes/$c ]] || return 1; done
}
if [[ -s $stamp ]] && built "$@" && [[ -z $(find pom.xml src -newer "$stamp" -print -quit) ]]; then
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
    echo "$name: maven build failed (offline attempt: $dir/target/build-offline.log)" >&2
    exit 1
  fi
fi
# Make the stamp the newest output even when maven left the file untouched.
touch "$stamp"
built "$@" || { echo "$name: $* missing from target/classes after the build" >&2; exit 1; }
