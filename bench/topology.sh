#!/usr/bin/env bash
# The topology phase of the bench (bench/README.md): makes a streaming
# replica of the local PostgreSQL (pg_basebackup -R, as the postgres user,
# on a free loopback port) and a PgBouncer in transaction mode in front of
# it, runs `bench -only topology` against both with the given flags, and
# stops and removes both on the way out. Run as root from anywhere:
#
#   bench/topology.sh -size 100k
set -euo pipefail
cd "$(dirname "$0")"
bin=/usr/lib/postgresql/$(psql -h 127.0.0.1 -U postgres -Atc 'SHOW server_version_num' | cut -c1-2)/bin
command -v pgbouncer >/dev/null || { echo "pgbouncer is missing: apt-get install pgbouncer"; exit 1; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
dir=$(mktemp -d /tmp/timeslots-topology.XXXXXX)
chown postgres: "$dir"
chmod 700 "$dir"
cleanup() {
  [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
  [ -f "$dir/replica/postmaster.pid" ] && runuser -u postgres -- "$bin/pg_ctl" -D "$dir/replica" -m fast -w stop >/dev/null || true
  for _ in $(seq 1 100); do
    psql -h 127.0.0.1 -U postgres -Atc "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = '${slot:-none}'" >/dev/null 2>&1 && break
    sleep 0.1
  done
  cp "$dir/replica.log" /tmp/timeslots-topology-replica.log 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

rport=$(free_port)
# A replication slot keeps the primary's WAL until the replica has it.
slot=ts_topology_$$
runuser -u postgres -- "$bin/pg_basebackup" -R -X stream -c fast -C -S "$slot" -D "$dir/replica" -h 127.0.0.1 -p 5432 -U postgres
setting() { psql -h 127.0.0.1 -U postgres -Atc "SHOW $1"; }
cat >"$dir/replica/postgresql.conf" <<CONF
hot_standby = on
hot_standby_feedback = on
max_connections = $(setting max_connections)
max_worker_processes = $(setting max_worker_processes)
max_wal_senders = $(setting max_wal_senders)
max_prepared_transactions = $(setting max_prepared_transactions)
max_locks_per_transaction = $(setting max_locks_per_transaction)
shared_buffers = $(setting shared_buffers)
CONF
printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >"$dir/replica/pg_hba.conf"
chown postgres: "$dir/replica/postgresql.conf" "$dir/replica/pg_hba.conf"
runuser -u postgres -- "$bin/pg_ctl" -D "$dir/replica" -l "$dir/replica.log" -w \
  -o "-p $rport -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir" start

pport=$(free_port)
echo '"postgres" ""' >"$dir/userlist.txt"
cat >"$dir/pgbouncer.ini" <<INI
[databases]
* = host=127.0.0.1 port=5432
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $pport
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = 2000
server_reset_query =
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
chown postgres: "$dir/userlist.txt" "$dir/pgbouncer.ini"
runuser -u postgres -- pgbouncer -d "$dir/pgbouncer.ini"
for _ in $(seq 1 50); do [ -s "$dir/pgbouncer.pid" ] && break; sleep 0.1; done

go run . -only topology -pgbouncer "127.0.0.1:$pport" -pgbouncer-pidfile "$dir/pgbouncer.pid" \
  -replica "127.0.0.1:$rport" "$@"
