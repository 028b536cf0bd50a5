#!/usr/bin/env bash
# A private PostgreSQL 15 cluster for the `postgres` persistent store (tests, benchmarks, local use).
#
#   bash scripts/postgres.sh [start]   # install (root, Debian) / initdb / start / ensure role+db; quick when running
#   bash scripts/postgres.sh stop      # fast shutdown (pg_ctl stop -m fast)
#   bash scripts/postgres.sh status    # "running ..." (exit 0) or "stopped" (exit 3)
#   bash scripts/postgres.sh env       # export RESEAT_PG_HOST=127.0.0.1 RESEAT_PG_PORT=... (eval-able)
#
# Cluster: ${RESEAT_CACHE:-$HOME/.cache/reseat}/postgres/{data,run,postgres.log}; listens on 127.0.0.1 only,
# port ${RESEAT_PG_PORT:-55432}, unix socket in postgres/run (mode 0700). Role and database `reseat`, password
# ${RESEAT_PG_PASSWORD:-reseat-local-pg} (scram-sha-256 over TCP). The superuser is reached only over the unix
# socket with peer auth, as the cluster's OS user: `postgres` when this runs as root (initdb refuses root),
# otherwise the calling user.
set -euo pipefail

PG_BIN="${RESEAT_PG_BIN:-/usr/lib/postgresql/15/bin}"
RESEAT_CACHE="${RESEAT_CACHE:-$HOME/.cache/reseat}"
mkdir -p "$RESEAT_CACHE"
RESEAT_CACHE="$(cd "$RESEAT_CACHE" && pwd -P)"
PG_ROOT="$RESEAT_CACHE/postgres"
DATA="$PG_ROOT/data"
SOCK_DIR="$PG_ROOT/run"
LOG="$PG_ROOT/postgres.log"
PORT="${RESEAT_PG_PORT:-55432}"
PASSWORD="${RESEAT_PG_PASSWORD:-reseat-local-pg}"
DB_NAME=reseat
DB_USER=reseat
CMD="${1:-start}"

say() { printf '[postgres] %s\n' "$*" >&2; }
die() { say "$*"; exit 1; }

case "$PORT" in '' | *[!0-9]*) die "RESEAT_PG_PORT must be a number, got '$PORT'" ;; esac
case "$PG_ROOT" in *"'"* | *'"'* | *' '*) die "the cluster path must not contain quotes or spaces: $PG_ROOT" ;; esac
[ -n "$PASSWORD" ] || die "RESEAT_PG_PASSWORD must not be empty"

if [ "$CMD" = env ]; then
  printf 'export RESEAT_PG_HOST=127.0.0.1 RESEAT_PG_PORT=%s RESEAT_PG_DATABASE=%s RESEAT_PG_USER=%s RESEAT_PG_PASSWORD=%q\n' \
    "$PORT" "$DB_NAME" "$DB_USER" "$PASSWORD"
  exit 0
fi
case "$CMD" in start | stop | status) ;; *) die "usage: $0 [start|stop|status|env]" ;; esac

# The cluster's OS user, and how to run a command as that user.
if [ "$(id -u)" = 0 ]; then
  OWNER=postgres
  as_owner() { runuser -u "$OWNER" -- "$@"; }
else
  OWNER="$(id -un)"
  as_owner() { "$@"; }
fi
cd / # the owner may not be able to read the caller's working directory

# One start/stop at a time (two test processes may run `start` together).
exec 9>"$RESEAT_CACHE/postgres.lock"
flock 9

# The postmaster's pid when our cluster runs, else nothing. A postmaster.pid whose process is gone, or is
# not a postgres (containers reuse pids after a restart), is stale.
running_pid() {
  local pid
  [ -f "$DATA/postmaster.pid" ] || return 1
  pid="$(head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true)"
  case "$pid" in '' | *[!0-9]*) return 1 ;; esac
  [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep postgres >/dev/null || return 1
  [ "$(readlink "/proc/$pid/cwd" 2>/dev/null || echo "$DATA")" = "$DATA" ] || return 1
  echo "$pid"
}
running_port() { sed -n 4p "$DATA/postmaster.pid" 2>/dev/null || true; }

if [ "$CMD" = status ]; then
  if pid="$(running_pid)"; then
    echo "running (pid $pid, 127.0.0.1:$(running_port), data $DATA)"
    exit 0
  fi
  echo "stopped (data $DATA)"
  exit 3
fi

if [ "$CMD" = stop ]; then
  if running_pid >/dev/null; then
    as_owner "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >&2
  else
    say "not running"
  fi
  exit 0
fi

# ---- start ----------------------------------------------------------------------------------------------

if [ ! -x "$PG_BIN/postgres" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's postgresql"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq postgresql >&2 || { apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2; }
  fi
  [ -x "$PG_BIN/postgres" ] || die "PostgreSQL 15 not found in $PG_BIN: install Debian's postgresql (as root) and re-run"
fi
id -u "$OWNER" >/dev/null 2>&1 || die "OS user '$OWNER' does not exist (the Debian postgresql package creates it)"

mkdir -p "$PG_ROOT"
if [ "$(id -u)" = 0 ]; then
  # The server runs as $OWNER and must reach its data dir: give it search (x, not read) permission on any
  # ancestor it cannot traverse (e.g. /root is 0700).
  # Top-down, since a directory is reachable only through its parents.
  dir=""
  for part in $(dirname "$PG_ROOT" | tr / ' '); do
    dir="$dir/$part"
    if ! as_owner test -x "$dir"; then
      say "granting search permission (o+x) on $dir so that '$OWNER' can reach $PG_ROOT"
      chmod o+x "$dir"
    fi
  done
  # A cache restored from another machine may carry another uid.
  if [ -n "$(find "$PG_ROOT" ! -user "$OWNER" -print -quit)" ]; then chown -R "$OWNER:" "$PG_ROOT"; fi
fi
chmod 700 "$PG_ROOT"
as_owner mkdir -p "$SOCK_DIR"
chmod 700 "$SOCK_DIR"

if [ ! -f "$DATA/PG_VERSION" ]; then
  if [ -e "$DATA" ]; then
    # No PG_VERSION: an initdb that died half-way. Nothing in it is usable; move it aside, never delete.
    aside="$DATA.broken-$(date +%Y%m%d%H%M%S)"
    say "$DATA has no PG_VERSION (interrupted initdb?): moving it to $aside"
    mv "$DATA" "$aside"
  fi
  say "initdb $DATA (owner $OWNER)"
  as_owner "$PG_BIN/initdb" -D "$DATA" -U "$OWNER" -E UTF8 --locale=C \
    --auth-local=peer --auth-host=scram-sha-256 >"$PG_ROOT/initdb.log" 2>&1 ||
    { cat "$PG_ROOT/initdb.log" >&2; die "initdb failed"; }
fi
version="$(cat "$DATA/PG_VERSION")"
[ "$version" = 15 ] || die "$DATA holds a PostgreSQL $version cluster, this script runs 15: remove or move it and re-run"
chmod 700 "$DATA"

pid="$(running_pid || true)"
if [ -n "$pid" ] && [ "$(running_port)" != "$PORT" ]; then
  say "running on port $(running_port) but RESEAT_PG_PORT is $PORT: restarting"
  as_owner "$PG_BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >&2
  pid=""
fi

if [ -z "$pid" ]; then
  # Configuration is (re)written on every start, so env overrides and script changes take effect.
  config="$(mktemp)"
  cat >"$config" <<EOF
# Written by scripts/postgres.sh on every start; edits are lost.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$SOCK_DIR'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
# Snapshot commits of 100+ MiB: fewer forced checkpoints.
max_wal_size = '4GB'
EOF
  install -m 600 -o "$OWNER" "$config" "$DATA/reseat.conf"
  cat >"$config" <<EOF
# Written by scripts/postgres.sh on every start; edits are lost.
# TYPE  DATABASE  USER      ADDRESS        METHOD
local   all       $OWNER                   peer
host    all       all       127.0.0.1/32   scram-sha-256
EOF
  install -m 600 -o "$OWNER" "$config" "$DATA/pg_hba.conf"
  rm -f "$config"
  grep -q "^include_if_exists = 'reseat.conf'" "$DATA/postgresql.conf" ||
    echo "include_if_exists = 'reseat.conf'" | as_owner tee -a "$DATA/postgresql.conf" >/dev/null
  # Not running: any postmaster.pid (and socket lock) is left over from a crash or a killed machine.
  if [ -e "$DATA/postmaster.pid" ]; then
    say "removing stale $DATA/postmaster.pid"
    rm -f "$DATA/postmaster.pid"
  fi
  rm -f "$SOCK_DIR"/.s.PGSQL.*
  say "starting PostgreSQL 15 on 127.0.0.1:$PORT (log $LOG)"
  # 9>&-: the postmaster must not inherit (and so hold forever) this script's lock.
  if ! as_owner "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 120 start >/dev/null 9>&-; then
    tail -n 30 "$LOG" >&2 || true
    die "PostgreSQL did not start; see $LOG"
  fi
fi

# Role and database, idempotently (also when an earlier start was interrupted before this point). The
# password travels on stdin, never in argv.
sql_password="${PASSWORD//\'/\'\'}"
as_owner "$PG_BIN/psql" -h "$SOCK_DIR" -p "$PORT" -U "$OWNER" -d postgres -X -q -v ON_ERROR_STOP=1 >/dev/null <<EOF
SELECT 'CREATE ROLE $DB_USER LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') \gexec
ALTER ROLE $DB_USER WITH LOGIN PASSWORD '$sql_password';
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
EOF
echo "running (pid $(running_pid), 127.0.0.1:$PORT, data $DATA)"
