#!/usr/bin/env bash
# Runs the benchmark suite (see bench/README.md). Installs what it needs
# from Debian's packages when missing: pgbench comes with the PostgreSQL
# server package. DATABASE_URL (or BENCH_DATABASE_URL) points at the
# PostgreSQL server used to create and drop the bench database.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v pgbench >/dev/null 2>&1; then
  echo "bench: installing pgbench (postgresql-contrib)…"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq postgresql-contrib >/dev/null
fi

export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
exec go run ./bench "$@"
