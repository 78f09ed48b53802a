#!/usr/bin/env bash
# pg-cluster.sh — a throwaway PostgreSQL cluster for the tests, in a directory of its own.
#
#   scripts/pg-cluster.sh start DIR          initdb into DIR/data, start it on a free loopback
#                                            port, create the roles, write DIR/env
#   scripts/pg-cluster.sh stop DIR           stop it and remove DIR
#   scripts/pg-cluster.sh stop-server DIR    stop the server, keep the data (fault tests)
#   scripts/pg-cluster.sh start-server DIR   start it again on the same port
#   scripts/pg-cluster.sh restart DIR        stop-server + start-server
#   scripts/pg-cluster.sh status DIR         exit 0 when the server runs
#
# Every command is idempotent. The server listens on 127.0.0.1 only (and a socket in
# DIR/sock), with durability off (fsync, synchronous_commit, full_page_writes): nothing in it
# is meant to survive. Roles, all with random passwords:
#   zygo_admin  superuser, for the test harness (CREATE/DROP DATABASE)
#   zygo_owner  LOGIN CREATEROLE, not superuser: owns the test databases, runs migrations
#   zygo_app    NOLOGIN group role of the application's privileges (granted by the migrations)
#   zygo_api    LOGIN, NOSUPERUSER NOBYPASSRLS, member of zygo_app: what the server connects as
# DIR/env is shell-sourceable (ZYGO_TEST_PG_*: see the end of cmd_start); `set -a; . DIR/env`
# exports it for the tests (tests/support/pgtest.h).
#
# initdb and the server refuse to run as root: as root they run as the `postgres` user of the
# Debian package (or a `zygo-pg` system user created when that is missing).
set -euo pipefail

die() { echo "pg-cluster: $*" >&2; exit 1; }

usage() {
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[ $# -eq 2 ] || usage
cmd=$1
dir=$2
[ -n "$dir" ] || usage
case $cmd in
start | stop | stop-server | start-server | restart | status) ;;
*) usage ;;
esac

find_bin() {
    local b
    # shellcheck disable=SC2012 # version directories: plain names
    for b in ${PG_BIN:-} $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$b/initdb" ] && [ -x "$b/pg_ctl" ] && { echo "$b"; return 0; }
    done
    local p
    p=$(command -v pg_ctl 2>/dev/null) && { dirname "$p"; return 0; }
    die "PostgreSQL server binaries not found (apt-get install postgresql; or set PG_BIN)"
}

# Who runs initdb/pg_ctl, and how.
setup_runas() {
    if [ "$(id -u)" -ne 0 ]; then
        RUNAS=$(id -un)
        as_user() { "$@"; }
        return
    fi
    if id postgres >/dev/null 2>&1; then
        RUNAS=postgres
    else
        RUNAS=zygo-pg
        id "$RUNAS" >/dev/null 2>&1 ||
            useradd --system --no-create-home --shell /usr/sbin/nologin "$RUNAS" ||
            die "cannot create the system user $RUNAS"
    fi
    as_user() { runuser -u "$RUNAS" -- "$@"; }
}

BIN=$(find_bin)
setup_runas
[ "$cmd" = start ] && mkdir -p "$dir"
if [ -d "$dir" ]; then
    dir=$(cd "$dir" && pwd)
elif [ "$cmd" = stop ]; then
    exit 0
else
    die "no cluster in $dir"
fi
data=$dir/data
marker=$dir/.zygo-pg-cluster

running() {
    [ -f "$data/PG_VERSION" ] && as_user "$BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

start_server() {
    running && return 0
    [ -f "$data/PG_VERSION" ] || die "no cluster in $dir (run: $0 start $dir)"
    if ! as_user "$BIN/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 -s start >/dev/null; then
        tail -n 20 "$dir/server.log" >&2 || true
        return 1
    fi
}

stop_server() {
    running || return 0
    as_user "$BIN/pg_ctl" -D "$data" -m fast -w -t 60 -s stop >/dev/null ||
        as_user "$BIN/pg_ctl" -D "$data" -m immediate -w -t 60 -s stop >/dev/null
}

port_in_use() {
    ss -Hltn "sport = :$1" 2>/dev/null | grep -q . && return 0
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# SQL on stdin, as the superuser.
psql_admin() {
    PGPASSWORD=$admin_pw "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" \
        -U zygo_admin -d postgres
}

cmd_start() {
    if [ -f "$dir/env" ] && [ -f "$data/PG_VERSION" ]; then
        start_server || die "cannot start the existing cluster in $dir (see $dir/server.log)"
        echo "pg-cluster: running (env: $dir/env)"
        return 0
    fi
    [ -e "$data" ] && die "$data exists but is not a finished cluster: run '$0 stop $dir' first"
    touch "$marker"
    chmod 755 "$dir"
    mkdir -p "$data" "$dir/sock"
    touch "$dir/server.log"
    chown "$RUNAS" "$data" "$dir/sock" "$dir/server.log"
    chmod 700 "$data"
    as_user test -w "$data" ||
        die "$dir is not reachable by the user $RUNAS (choose a directory under /tmp)"

    admin_pw=$(random_hex 16)
    local owner_pw api_pw locale=C
    owner_pw=$(random_hex 16)
    api_pw=$(random_hex 16)
    locale -a 2>/dev/null | grep -qix 'c\.utf-\?8' && locale=C.UTF-8
    local pwfile=$dir/.pw
    (umask 077 && printf '%s\n' "$admin_pw" >"$pwfile")
    chown "$RUNAS" "$pwfile"
    if ! as_user "$BIN/initdb" -D "$data" -U zygo_admin --pwfile="$pwfile" -A scram-sha-256 \
        -E UTF8 --locale="$locale" -N >"$dir/initdb.log" 2>&1; then
        rm -f "$pwfile"
        cat "$dir/initdb.log" >&2
        die "initdb failed"
    fi
    rm -f "$pwfile"
    cat >>"$data/postgresql.conf" <<EOF

# pg-cluster.sh: a throwaway test cluster
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir/sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 64MB
max_wal_size = 1GB
log_min_messages = warning
log_min_error_statement = panic
EOF
    # A free port: pick one, and try another if the server could not bind it after all.
    local tries=0
    while :; do
        tries=$((tries + 1))
        port=$((20000 + RANDOM % 40000))
        port_in_use "$port" && continue
        printf "port = %d\n" "$port" >>"$data/postgresql.conf"
        start_server && break
        [ $tries -lt 8 ] || die "cannot start PostgreSQL (see $dir/server.log)"
        grep -q "could not bind\|could not create\|Address already in use" "$dir/server.log" ||
            die "cannot start PostgreSQL (see $dir/server.log)"
    done

    psql_admin <<EOF
CREATE ROLE zygo_app NOLOGIN;
CREATE ROLE zygo_owner LOGIN CREATEROLE NOSUPERUSER NOBYPASSRLS PASSWORD '$owner_pw';
CREATE ROLE zygo_api LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE
    PASSWORD '$api_pw' IN ROLE zygo_app;
EOF

    local base="127.0.0.1:$port"
    cat >"$dir/env.tmp" <<EOF
ZYGO_TEST_PG_DIR=$dir
ZYGO_TEST_PG_HOST=127.0.0.1
ZYGO_TEST_PG_PORT=$port
ZYGO_TEST_PG_ADMIN_URL=postgres://zygo_admin:$admin_pw@$base/postgres
ZYGO_TEST_PG_OWNER_URL=postgres://zygo_owner:$owner_pw@$base/postgres
ZYGO_TEST_PG_APP_URL=postgres://zygo_api:$api_pw@$base/postgres
ZYGO_TEST_PG_OWNER_PASSWORD=$owner_pw
ZYGO_TEST_PG_APP_PASSWORD=$api_pw
ZYGO_TEST_PG_SCRIPT=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
EOF
    chmod 600 "$dir/env.tmp"
    mv "$dir/env.tmp" "$dir/env"
    echo "pg-cluster: PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') on $base (env: $dir/env)"
}

cmd_stop() {
    if [ -f "$data/PG_VERSION" ] && running; then
        as_user "$BIN/pg_ctl" -D "$data" -m immediate -w -t 60 -s stop >/dev/null || true
    fi
    # Only ever remove what this script made.
    [ -f "$marker" ] || die "$dir was not made by pg-cluster.sh: not removing it"
    rm -rf "$dir"
}

case $cmd in
start) cmd_start ;;
stop) cmd_stop ;;
stop-server) stop_server ;;
start-server) start_server || die "cannot start PostgreSQL (see $dir/server.log)" ;;
restart)
    stop_server
    start_server || die "cannot start PostgreSQL (see $dir/server.log)"
    ;;
status) running ;;
*) usage ;;
esac
