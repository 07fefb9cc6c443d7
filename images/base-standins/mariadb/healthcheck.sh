#!/bin/bash
# As mariadb's healthcheck.sh for `--connect --innodb_initialized` (other options: ignored):
# a TCP connection (the first start runs without networking) and InnoDB available.
exec mariadb --protocol=tcp -h 127.0.0.1 -uroot -p"$MARIADB_ROOT_PASSWORD" -N -B \
    -e "SELECT 1 FROM information_schema.ENGINES WHERE ENGINE='InnoDB' AND SUPPORT IN ('YES','DEFAULT')" \
    | grep -q 1
