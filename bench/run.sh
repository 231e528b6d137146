#!/usr/bin/env bash
# Runs the benchmark suite (see bench/README.md). Installs what it needs
# from Debian's packages when missing: pgbench (postgresql-contrib) and the
# wrk load generator. DATABASE_URL (or BENCH_DATABASE_URL) points at the
# PostgreSQL server used to create and drop the bench database.
#
# bench/ is a module of its own (bench/go.mod): the command is built inside
# it and runs from the repository's root, so paths given as flags
# (-readme bench/README.md, -chart, -profile) are relative to the root.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v pgbench >/dev/null 2>&1 || missing+=(postgresql-contrib)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bench: installing ${missing[*]}…"
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  # From the package lists the machine has, else after refreshing them.
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 ||
    { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null; }
fi

export GOFLAGS="${GOFLAGS:-} -buildvcs=false"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -C bench -o "$tmp/bench" .
"$tmp/bench" "$@"
