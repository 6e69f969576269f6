#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for tests, on 127.0.0.1 only.
#
#   scripts/postgres.sh start DIR PORT   # initdb (if needed), start, create loopline_test, print URL
#   scripts/postgres.sh stop DIR         # stop the cluster (fast shutdown)
#
# Use the printed URL as LOOPLINE_TEST_DATABASE_URL. The server binaries (initdb, pg_ctl, psql)
# must be on PATH; they run as the `postgres` user (via runuser when we are root).
# Test-only settings: trust authentication, fsync off. Never point this at data you keep.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR PORT | stop DIR" >&2
    exit 2
}

as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local dir="$1" port="$2"
    case "$port" in
        '' | *[!0-9]*) echo "port '$port' is not a number" >&2; exit 2 ;;
    esac
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    if [ ! -f "$dir/PG_VERSION" ]; then
        local log
        log="$(mktemp)"
        if ! as_postgres initdb -D "$dir" -A trust -U postgres --no-sync >"$log" 2>&1; then
            cat "$log" >&2
            rm -f "$log"
            exit 1
        fi
        rm -f "$log"
    fi
    # Sockets go in the data directory, so nothing outside DIR is needed or touched.
    if ! as_postgres pg_ctl -D "$dir" status >/dev/null 2>&1; then
        as_postgres pg_ctl -D "$dir" -l "$dir/server.log" -w -t 60 \
            -o "-h 127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off" start >/dev/null
    fi
    # pg_ctl -w already waited; pg_isready confirms TCP with its own bounded loop.
    local deadline=$((SECONDS + 60))
    until as_postgres pg_isready -q -h 127.0.0.1 -p "$port"; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "PostgreSQL on 127.0.0.1:$port was not ready within 60 s; see $dir/server.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    if ! as_postgres psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = 'loopline_test'" | grep -q 1; then
        as_postgres psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -qc \
            "CREATE DATABASE loopline_test"
    fi
    echo "postgresql://postgres@127.0.0.1:$port/loopline_test"
}

stop() {
    local dir="$1"
    dir="$(cd "$dir" && pwd)"
    as_postgres pg_ctl -D "$dir" -m fast -w -t 60 stop >/dev/null
}

case "${1:-}" in
    start) [ $# -eq 3 ] || usage; start "$2" "$3" ;;
    stop) [ $# -eq 2 ] || usage; stop "$2" ;;
    *) usage ;;
esac
