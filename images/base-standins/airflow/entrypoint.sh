#!/bin/bash
# As apache/airflow's /entrypoint where this project relies on it: wait for the metadata
# database (unless CONNECTION_CHECK_MAX_COUNT=0 or the command is bash/python), then run
# `bash ...`, `python ...` and `airflow ...` as given, anything else as `airflow <args>`.
set -euo pipefail
cmd="${1:-}"
if [ "$cmd" != bash ] && [ "$cmd" != python ] && [ "${CONNECTION_CHECK_MAX_COUNT:-20}" -gt 0 ]; then
    for i in $(seq "${CONNECTION_CHECK_MAX_COUNT:-20}"); do
        if airflow db check >/dev/null 2>&1; then
            break
        fi
        if [ "$i" = "${CONNECTION_CHECK_MAX_COUNT:-20}" ]; then
            echo "entrypoint: the metadata database did not answer:" >&2
            airflow db check >&2 || true
            exit 1
        fi
        sleep "${CONNECTION_CHECK_SLEEP_TIME:-3}"
    done
fi
case "$cmd" in
    "") exec bash ;;
    bash | python | airflow) exec "$@" ;;
    *) exec airflow "$@" ;;
esac
