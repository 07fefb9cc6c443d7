#!/usr/bin/env bash
# Build and install cpsign-stage, our own subset of the CPSign CLI, with its runtime class path.
#
#   install.sh [DEST]
#
# DEST defaults to ${CPSIGN_HOME:-$HOME/.cache/cpsign-airflow/cpsign-$VERSION}, with
# VERSION=${CPSIGN_VERSION:-2.0.0} (the com.arosbio:cpsign-api version). Afterwards DEST/lib
# holds cpsign-stage-*.jar (compiled from src/ next to this script) and every runtime
# dependency of com.arosbio:cpsign-api:$VERSION, and DEST/bin/cpsign runs
#   java $JAVA_OPTS -cp "DEST/lib/*" org.cpsignairflow.StageCli "$@"
# The launcher's path is the only line written to stdout; progress goes to stderr.
# Running it again does nothing (a few ms) unless VERSION, pom.xml or the sources changed
# (DEST/.stamp records their checksum).
#
# Why not the CPSign CLI itself: Maven Central does not serve com.arosbio:cpsign (the CLI),
# only its library modules (cpsign-api, confai, fast-ivap, depict). See README.md.
#
# Needs Java 11+ and Maven 3. Everything comes from Maven Central into a local repository
# of its own (${CPSIGN_MAVEN_REPO:-DEST/.m2}), so ~/.m2 is neither read nor written.
# Environment: CPSIGN_VERSION, CPSIGN_HOME, CPSIGN_MAVEN_REPO, MVN (default mvn),
# JAVA (default java; also used by the launcher).
set -euo pipefail

VERSION="${CPSIGN_VERSION:-2.0.0}"
DEST="${1:-${CPSIGN_HOME:-$HOME/.cache/cpsign-airflow/cpsign-$VERSION}}"
MVN="${MVN:-mvn}"
JAVA="${JAVA:-java}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# What the install is built from: the library version, the pom and our sources.
stamp() {
    {
        printf 'cpsign-api %s\n' "$VERSION"
        cd "$HERE" && find pom.xml src -type f | LC_ALL=C sort | xargs sha256sum
    } | sha256sum | cut -d' ' -f1
}
STAMP="$(stamp)"

installed() {
    [ -x "$DEST/bin/cpsign" ] && [ -f "$DEST/lib/cpsign-api-$VERSION.jar" ] &&
        [ "$(cat "$DEST/.stamp" 2>/dev/null)" = "$STAMP" ]
}

if installed; then
    echo "$DEST/bin/cpsign"
    exit 0
fi

command -v "$JAVA" >/dev/null || die "java not found (cpsign-api $VERSION needs Java 11 or later)"
java_version="$("$JAVA" -XshowSettings:properties -version 2>&1 |
    awk -F'= ' '/java.specification.version/ {print $2}')"
[ "${java_version%%.*}" -ge 11 ] 2>/dev/null ||
    die "cpsign-api $VERSION needs Java 11 or later; $JAVA is ${java_version:-of unknown version}"
command -v "$MVN" >/dev/null || die "Maven (mvn) not found"

case "$DEST" in
*[\"\$\`\\]*) die "DEST must not contain quotes, \$, \` or backslashes: $DEST" ;;
esac
mkdir -p "$DEST"
DEST="$(cd "$DEST" && pwd)"
REPO="${CPSIGN_MAVEN_REPO:-$DEST/.m2}"

# One installer at a time per DEST (parallel workers may start together).
if command -v flock >/dev/null; then
    exec 9>"$DEST/.install.lock"
    flock 9
    if installed; then
        echo "$DEST/bin/cpsign"
        exit 0
    fi
fi

WORK="$(mktemp -d "$DEST/.install.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/build"
cp -R "$HERE/pom.xml" "$HERE/src" "$WORK/build/"

log "building cpsign-stage on com.arosbio:cpsign-api:$VERSION (Maven Central) into $DEST/lib"
# Maven's output goes to stderr: this script's stdout is only the launcher path.
if ! "$MVN" -B -q -Dstyle.color=never -Dmaven.repo.local="$REPO" -f "$WORK/build/pom.xml" \
    -Dcpsign.version="$VERSION" -Dstage.lib="$WORK/lib" package >"$WORK/mvn.log" 2>&1; then
    cat "$WORK/mvn.log" >&2
    die "Maven could not build cpsign-stage (see above)"
fi
cp "$WORK"/build/target/cpsign-stage-*.jar "$WORK/lib/"
[ -f "$WORK/lib/cpsign-api-$VERSION.jar" ] || die "cpsign-api-$VERSION.jar missing from the resolved class path"

cat >"$WORK/cpsign" <<LAUNCHER
#!/bin/sh
# cpsign-stage (a subset of the CPSign CLI on cpsign-api $VERSION), installed by cpsign-airflow's install.sh.
exec "\${JAVA:-java}" \${JAVA_OPTS:-} -cp "$DEST/lib/*" org.cpsignairflow.StageCli "\$@"
LAUNCHER
chmod 755 "$WORK/cpsign"
"$JAVA" -cp "$WORK/lib/*" org.cpsignairflow.StageCli --version >&2 ||
    die "the built cpsign-stage does not run"

mkdir -p "$DEST/bin"
rm -f "$DEST/bin/cpsign" "$DEST/.stamp"   # first: an interrupted install is not taken as done
rm -rf "${DEST:?}/lib"
mv "$WORK/lib" "$DEST/lib"
cp "$HERE/pom.xml" "$DEST/pom.xml"   # kept: records how DEST/lib was built
mv "$WORK/cpsign" "$DEST/bin/cpsign"
echo "$STAMP" >"$DEST/.stamp"         # last: marks a complete install
log "installed cpsign-stage on cpsign-api $VERSION ($(find "$DEST/lib" -name "*.jar" | wc -l) jars)"
echo "$DEST/bin/cpsign"
