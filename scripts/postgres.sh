#!/usr/bin/env bash
# Brings up the local PostgreSQL the test suite uses (Debian's packaged cluster).
#
# Idempotent: every step checks before it acts, so `make test` may run it every time.
# Run as root (it installs packages and switches to the postgres user). Steps:
#   1. install PostgreSQL when no server binary is present
#   2. create a cluster when there is none, start it when it is down
#   3. wait until it accepts connections
#   4. create a superuser role for the current user (peer auth on the local socket)
#   5. create the database gater_test
# The tests then connect with GATER_TEST_POSTGRES_DSN=postgresql:///gater_test?host=/var/run/postgresql
set -euo pipefail

DB_NAME="${GATER_TEST_DB:-gater_test}"
SOCKET_DIR=/var/run/postgresql
ME="$(id -un)"

as_postgres() {
    if [ "$ME" = postgres ]; then "$@"; else su postgres -s /bin/bash -c "$(printf '%q ' "$@")"; fi
}

# 1. install
if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "postgres.sh: installing PostgreSQL (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null
    apt-get install -y -q postgresql >/dev/null
else
    echo "postgres.sh: PostgreSQL installed ($(ls -d /usr/lib/postgresql/*/bin/postgres | head -n1))"
fi

# 2. cluster: the first one pg_lsclusters lists, or a new "main" of the newest installed version
read -r PG_VERSION PG_CLUSTER PG_PORT PG_STATUS _ < <(pg_lsclusters --no-header 2>/dev/null | head -n1 || true) || true
if [ -z "${PG_VERSION:-}" ]; then
    PG_VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
    PG_CLUSTER=main
    echo "postgres.sh: creating cluster $PG_VERSION/$PG_CLUSTER"
    pg_createcluster "$PG_VERSION" "$PG_CLUSTER" >/dev/null
    read -r PG_VERSION PG_CLUSTER PG_PORT PG_STATUS _ < <(pg_lsclusters --no-header | head -n1)
else
    echo "postgres.sh: cluster $PG_VERSION/$PG_CLUSTER on port $PG_PORT is $PG_STATUS"
fi

if [ "$PG_STATUS" != online ]; then
    echo "postgres.sh: starting cluster $PG_VERSION/$PG_CLUSTER"
    pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" "$PG_CLUSTER" start
fi

# 3. wait until ready (up to 30 s)
for _ in $(seq 1 60); do
    if pg_isready -q -h "$SOCKET_DIR" -p "$PG_PORT"; then break; fi
    sleep 0.5
done
if ! pg_isready -q -h "$SOCKET_DIR" -p "$PG_PORT"; then
    echo "postgres.sh: PostgreSQL did not become ready; see /var/log/postgresql/" >&2
    exit 1
fi
echo "postgres.sh: PostgreSQL is ready on $SOCKET_DIR port $PG_PORT"

# 4. a superuser role for the current user
if [ "$ME" != postgres ]; then
    if [ "$(as_postgres psql -h "$SOCKET_DIR" -p "$PG_PORT" -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$ME'")" = 1 ]; then
        echo "postgres.sh: role $ME exists"
    else
        echo "postgres.sh: creating superuser role $ME"
        as_postgres createuser -h "$SOCKET_DIR" -p "$PG_PORT" --superuser "$ME"
    fi
fi

# 5. the test database
if [ "$(as_postgres psql -h "$SOCKET_DIR" -p "$PG_PORT" -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" = 1 ]; then
    echo "postgres.sh: database $DB_NAME exists"
else
    echo "postgres.sh: creating database $DB_NAME owned by $ME"
    as_postgres createdb -h "$SOCKET_DIR" -p "$PG_PORT" -O "$ME" "$DB_NAME"
fi
echo "postgres.sh: DSN postgresql:///$DB_NAME?host=$SOCKET_DIR&port=$PG_PORT"
