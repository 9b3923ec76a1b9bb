#!/bin/sh
# One image, three roles: the pg_auto_failover monitor, a PostgreSQL node, or the PgBouncer in
# front of a node. `pg_autoctl create … --run` initialises on the first start and only runs on
# the next ones (its state lives in the volume).
set -eu

case "${1:-}" in
monitor)
    exec pg_autoctl create monitor \
        --pgdata "$PGDATA" --pgport 5432 --hostname "$(hostname)" \
        --auth trust --no-ssl --run
    ;;
node)
    exec pg_autoctl create postgres \
        --pgdata "$PGDATA" --pgport 5432 --hostname "$(hostname)" --name "$(hostname)" \
        --monitor "postgres://autoctl_node@monitor:5432/pg_auto_failover?sslmode=disable" \
        --dbname finvision --auth trust --no-ssl --pg-hba-lan --run
    ;;
pgbouncer)
    node="${2:?which node: node1 or node2}"
    sed "s/@NODE@/$node/" /etc/finvision/pgbouncer/pgbouncer.ini > /tmp/pgbouncer.ini
    exec pgbouncer /tmp/pgbouncer.ini
    ;;
*)
    echo "usage: fv-postgres monitor | node | pgbouncer NODE" >&2
    exit 2
    ;;
esac
