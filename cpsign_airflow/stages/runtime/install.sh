#!/usr/bin/env bash
# Install the CPSign CLI (com.arosbio:cpsign) with its runtime class path, reproducibly.
#
#   install.sh [DEST]
#
# DEST defaults to ${CPSIGN_HOME:-$HOME/.cache/cpsign-airflow/cpsign-$VERSION}, with
# VERSION=${CPSIGN_VERSION:-2.0.0}. Afterwards DEST/lib holds cpsign-$VERSION.jar and
# every runtime dependency, and DEST/bin/cpsign runs
#   java $JAVA_OPTS -cp "DEST/lib/*" com.arosbio.cpsign.app.CPSignApp "$@"
# The launcher's path is the only line written to stdout; progress goes to stderr.
# Running it again once DEST/lib has the cpsign jar does nothing (idempotent).
#
# Needs Java 11+ and Maven 3. Dependencies come from Maven Central, into a local
# repository of its own (${CPSIGN_MAVEN_REPO:-DEST/.m2}), so ~/.m2 is neither read
# nor written. When Maven Central does not serve com.arosbio:cpsign (upstream
# publishes the CLI module's thin jar there, but 2.0.0 is not found at
# repo.maven.apache.org; only its modules cpsign-api, confai, depict, fast-ivap and
# the parent pom are), the CLI module is compiled from the tagged sources (tag
# v$VERSION) with upstream's own pom, installed into that local repository, and
# resolved as above. The sources come from $CPSIGN_SOURCE (a clone of
# https://github.com/arosbio/cpsign, bare or not, having the tag; or an unpacked
# source tree) or else from a shallow git clone of ${CPSIGN_GIT_URL}.
#
# Environment: CPSIGN_VERSION, CPSIGN_HOME, CPSIGN_MAVEN_REPO, CPSIGN_SOURCE,
# CPSIGN_GIT_URL, MVN (default mvn), JAVA (default java; also used by the launcher).
set -euo pipefail

VERSION="${CPSIGN_VERSION:-2.0.0}"
DEST="${1:-${CPSIGN_HOME:-$HOME/.cache/cpsign-airflow/cpsign-$VERSION}}"
MVN="${MVN:-mvn}"
JAVA="${JAVA:-java}"
GIT_URL="${CPSIGN_GIT_URL:-https://github.com/arosbio/cpsign.git}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

log() { printf 'install.sh: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

installed() { [ -f "$DEST/lib/cpsign-$VERSION.jar" ] && [ -x "$DEST/bin/cpsign" ]; }

if installed; then
    echo "$DEST/bin/cpsign"
    exit 0
fi

command -v "$JAVA" >/dev/null || die "java not found (CPSign $VERSION needs Java 11 or later)"
java_version="$("$JAVA" -XshowSettings:properties -version 2>&1 |
    awk -F'= ' '/java.specification.version/ {print $2}')"
[ "${java_version%%.*}" -ge 11 ] 2>/dev/null ||
    die "CPSign $VERSION needs Java 11 or later; $JAVA is ${java_version:-of unknown version}"
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
cp "$HERE/pom.xml" "$DEST/pom.xml"   # kept: records how DEST/lib was resolved

mvn_() { "$MVN" -B -Dstyle.color=never -Dmaven.repo.local="$REPO" "$@"; }

copy_dependencies() {
    mvn_ -q -f "$DEST/pom.xml" -Dcpsign.version="$VERSION" \
        -DoutputDirectory="$WORK/lib" dependency:copy-dependencies
}

fetch_sources() {  # unpack the v$VERSION sources into $1
    local out="$1" src="${CPSIGN_SOURCE:-}"
    mkdir -p "$out"
    if [ -n "$src" ]; then
        if git -C "$src" rev-parse -q --verify "v$VERSION^{commit}" >/dev/null 2>&1; then
            log "CPSign sources: tag v$VERSION of $src"
            # only what the CLI module's build reads (the repository's test data is large)
            git -C "$src" archive "v$VERSION" pom.xml license cpsign | tar -x -C "$out"
        elif [ -f "$src/cpsign/pom.xml" ]; then
            log "CPSign sources: source tree $src (not checked against tag v$VERSION)"
            cp -R "$src/." "$out/"
        else
            die "CPSIGN_SOURCE=$src has neither tag v$VERSION nor cpsign/pom.xml"
        fi
    else
        log "CPSign sources: git clone --branch v$VERSION $GIT_URL"
        git clone -q --depth 1 --branch "v$VERSION" "$GIT_URL" "$out" ||
            die "cannot get the CPSign $VERSION sources; set CPSIGN_SOURCE to a clone of $GIT_URL"
    fi
    grep -q "<version>$VERSION</version>" "$out/cpsign/pom.xml" ||
        die "the sources' cpsign/pom.xml is not version $VERSION"
}

build_from_sources() {
    local src="$WORK/src" jar
    fetch_sources "$src"
    # compile + jar:jar, not package: package also resolves the test-scoped
    # com.arosbio:test-utils (tests classifier), which is not published.
    log "compiling the CPSign $VERSION CLI module"
    mvn_ -q -f "$src/cpsign/pom.xml" compile jar:jar
    jar="$src/cpsign/target/cpsign-$VERSION.jar"
    [ -f "$jar" ] || die "the build did not produce $jar"
    mvn_ -q -f "$DEST/pom.xml" install:install-file -Dfile="$jar" -DpomFile="$src/cpsign/pom.xml"
}

log "resolving com.arosbio:cpsign:$VERSION and its runtime dependencies into $DEST/lib"
if ! copy_dependencies >"$WORK/central.log" 2>&1; then
    if grep -q "com.arosbio:cpsign:jar:$VERSION" "$WORK/central.log"; then
        log "Maven Central has no com.arosbio:cpsign:$VERSION; building it from its sources"
        build_from_sources
        rm -rf "$WORK/lib"
        copy_dependencies
    else
        cat "$WORK/central.log" >&2
        die "Maven could not resolve the CPSign runtime"
    fi
fi
[ -f "$WORK/lib/cpsign-$VERSION.jar" ] || die "cpsign-$VERSION.jar missing from the resolved class path"

mkdir -p "$DEST/bin"
cat >"$WORK/cpsign" <<LAUNCHER
#!/bin/sh
# CPSign $VERSION CLI, installed by cpsign-airflow's install.sh.
exec "\${JAVA:-java}" \${JAVA_OPTS:-} -cp "$DEST/lib/*" com.arosbio.cpsign.app.CPSignApp "\$@"
LAUNCHER
chmod 755 "$WORK/cpsign"
rm -rf "$DEST/lib"
mv "$WORK/lib" "$DEST/lib"
mv "$WORK/cpsign" "$DEST/bin/cpsign"   # last: its presence marks a complete install
log "installed CPSign $VERSION ($(ls "$DEST/lib" | wc -l) jars)"
echo "$DEST/bin/cpsign"
