#!/usr/bin/env bash
# Debian/Ubuntu packages that `make test` and `make demo` need:
#   python3-venv                      - to create the project's virtual environment
#   pkg-config, libmariadb-dev, gcc   - to build mysqlclient (MySqlHook's driver)
#   mariadb-server                    - a throwaway MariaDB for the bookkeeping tests
#   bubblewrap                        - the local pachd shows each datum its files at /pfs
#   openjdk-17-jdk-headless, maven    - build and run the CPSign runtime (stages/runtime)
#   chromium, chromium-driver         - the browser test drives the Airflow UI's forms (Selenium)
# Installs them when run as root with apt available; otherwise prints the command.
set -euo pipefail
PY=${PYTHON:-python3}
missing=()
$PY -m venv --help >/dev/null 2>&1 || missing+=(python3-venv)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v gcc >/dev/null 2>&1 || missing+=(gcc)
if ! pkg-config --exists libmariadb 2>/dev/null && ! pkg-config --exists mysqlclient 2>/dev/null; then
  missing+=(libmariadb-dev)
fi
if [ "${NEED_MARIADB_SERVER:-1}" = 1 ] && ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  missing+=(mariadb-server)
fi
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || missing+=(chromium-driver)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "Missing system packages: ${missing[*]}" >&2
  echo "Run:  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
