#!/usr/bin/env bash
# make base-images: every base image the Dockerfiles and docker-compose.yaml name, present
# locally. Each one is used as it is if the engine has it, else pulled; only if it cannot be
# pulled (no registry reachable) is a stand-in built from Debian's archive
# (images/base-standins/, on a debootstrapped debian:bookworm) and tagged with that name.
#
#   scripts/base_images.sh            # what is missing
#   FORCE_STANDINS=1 scripts/base_images.sh   # stand-ins even where a pull would work
#
# Environment:
#   AIRFLOW_VERSION, PYTHON_VERSION   the Airflow base (default: the Dockerfile's defaults)
#   CPSIGN_DB_IMAGE                   the bookkeeping database (default mariadb:11.4)
#   EXTRA_CA_CERTS_FILE               PEM file of extra CA certificates for downloads inside
#                                     the builds (a TLS-intercepting proxy); default: the
#                                     host's /usr/local/share/ca-certificates/*.crt, if any
#   PIP_INDEX_URL                     a PyPI mirror for the builds
#   DEBIAN_MIRROR                     for debootstrap (default http://deb.debian.org/debian)
#   PULL_TIMEOUT                      seconds per pull attempt (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
STANDINS="$REPO/images/base-standins"

log() { printf 'base-images: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

dockerfile_default() {  # the default of `ARG NAME=...` in ./Dockerfile
    sed -n "s/^ARG $1=\(.*\)$/\1/p" "$REPO/Dockerfile" | head -n1
}
AIRFLOW_VERSION="${AIRFLOW_VERSION:-$(dockerfile_default AIRFLOW_VERSION)}"
PYTHON_VERSION="${PYTHON_VERSION:-$(dockerfile_default PYTHON_VERSION)}"
DB_IMAGE="${CPSIGN_DB_IMAGE:-mariadb:11.4}"
DEBIAN_MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
PULL_TIMEOUT="${PULL_TIMEOUT:-60}"

# The build arguments every build takes (docs/deployment.md, "Offline and behind a proxy").
# shellcheck source=scripts/build_args.sh
source "$REPO/scripts/build_args.sh"

have() { docker image inspect "$1" >/dev/null 2>&1; }
pullable() {
    [ -n "${FORCE_STANDINS:-}" ] && return 1
    log "pulling $1"
    timeout "$PULL_TIMEOUT" docker pull -q "$1" >/dev/null 2>&1
}

debian_base() {
    have debian:bookworm && return 0
    pullable debian:bookworm && return 0
    command -v debootstrap >/dev/null || {
        [ "$(id -u)" = 0 ] || die "debootstrap is missing (apt-get install debootstrap, as root)"
        apt-get install -y -q debootstrap >&2
    }
    local root
    root="$(mktemp -d /var/tmp/cpsign-debootstrap.XXXXXX)"
    log "debootstrap bookworm from $DEBIAN_MIRROR (about a minute)"
    debootstrap --variant=minbase bookworm "$root" "$DEBIAN_MIRROR" >&2 ||
        { rm -rf "$root"; die "debootstrap failed"; }
    cat > "$root/etc/apt/sources.list" <<SOURCES
deb $DEBIAN_MIRROR bookworm main
deb $DEBIAN_MIRROR bookworm-updates main
deb http://deb.debian.org/debian-security bookworm-security main
SOURCES
    # As Docker's debian images: no recommends, no caches, no docs.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        > "$root/etc/apt/apt.conf.d/90no-recommends"
    printf 'path-exclude /usr/share/doc/*\npath-include /usr/share/doc/*/copyright\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
        > "$root/etc/dpkg/dpkg.cfg.d/90nodoc"
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
        "$root"/usr/share/man/* "$root"/usr/share/info/*
    mkdir -p "$root/usr/share/man/man1"  # update-alternatives links there (openjdk's postinst)
    tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - debian:bookworm >/dev/null
    rm -rf "$root"
    log "debian:bookworm imported"
}

standin() {  # standin TAG DIRECTORY [extra docker build args...]
    local tag="$1" dir="$2"
    shift 2
    have "$tag" && { log "$tag: present"; return 0; }
    pullable "$tag" && { log "$tag: pulled"; return 0; }
    debian_base
    log "$tag: building a stand-in from $dir"
    local start=$SECONDS
    docker build --force-rm -q -t "$tag" "${BUILD_ARGS[@]}" "$@" "$dir" >/dev/null
    log "$tag: stand-in built in $((SECONDS - start)) s"
}

command -v docker >/dev/null || die "no docker CLI (make compose-test installs the engine)"
docker info >/dev/null 2>&1 || die "the Docker engine does not answer"

# The stage image's base: Debian itself (debootstrap's minbase, without docs, is as slim).
if ! have debian:bookworm-slim && ! pullable debian:bookworm-slim; then
    debian_base
    docker tag debian:bookworm debian:bookworm-slim
    log "debian:bookworm-slim: the debootstrapped debian:bookworm"
fi
standin "maven:3.9-eclipse-temurin-17" "$STANDINS/maven"
standin "postgres:16" "$STANDINS/postgres"
standin "$DB_IMAGE" "$STANDINS/mariadb"
# The Airflow stand-in installs Airflow at the versions the test suite passed with.
constraints="$REPO/constraints/constraints-$PYTHON_VERSION.txt"
airflow_tag="apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}"
[ -f "$constraints" ] || die "no $constraints for the Airflow stand-in"
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp -R "$STANDINS/airflow/." "$ctx/"
cp "$constraints" "$ctx/constraints.txt"
standin "$airflow_tag" "$ctx" --build-arg "AIRFLOW_VERSION=$AIRFLOW_VERSION" \
    --build-arg "PYTHON_VERSION=$PYTHON_VERSION"
log "ready: debian:bookworm-slim maven:3.9-eclipse-temurin-17 postgres:16 $DB_IMAGE $airflow_tag"
