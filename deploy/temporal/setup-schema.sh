#!/bin/sh
# Temporal's persistence on the shared PostgreSQL: creates its two databases and brings
# their schemas to the version this admin-tools image ships. Idempotent, so it runs
# before every start of the server: an existing database is kept, a schema already at
# a newer version is left alone, and a newer image applies its schema updates here.
set -eu

: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${POSTGRES_PWD:?}" "${DBNAME:?}" "${VISIBILITY_DBNAME:?}"

# temporal-sql-tool reads its connection from SQL_* (no password on a command line).
export SQL_PLUGIN=postgres12
export SQL_HOST="${POSTGRES_SEEDS}"
export SQL_PORT="${DB_PORT:-5432}"
export SQL_USER="${POSTGRES_USER}"
export SQL_PASSWORD="${POSTGRES_PWD}"
SCHEMA_DIR=/etc/temporal/schema/postgresql/v12

prepare() {
    database=$1
    versioned=$2
    echo "temporal schema: ${database}"
    temporal-sql-tool --db "${database}" create-database
    temporal-sql-tool --db "${database}" setup-schema -v 0.0
    temporal-sql-tool --db "${database}" update-schema -d "${SCHEMA_DIR}/${versioned}/versioned"
}

prepare "${DBNAME}" temporal
prepare "${VISIBILITY_DBNAME}" visibility
echo "temporal schema: up to date"
