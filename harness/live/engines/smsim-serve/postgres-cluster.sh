#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for one live run, as a profile's service:
#
#   postgres-cluster.sh start WORKDIR PORT   create the cluster on first use (its data in a
#                                            new directory under /tmp, noted in
#                                            WORKDIR/postgres.dir), start it on 127.0.0.1:PORT
#                                            and write the server's pid to WORKDIR/postgres.pid
#   postgres-cluster.sh stop WORKDIR         stop it at once and remove its data
#
# The server daemonises (pg_ctl): the profile names WORKDIR/postgres.pid as its pid file,
# so smsim live can kill it, restart it on the same data, and end it on every way out.
# It listens on loopback TCP only, with no Unix socket. fsync is off (the operating system
# outlives every kill here) but commits are synchronous: an acknowledged commit must
# survive a SIGKILL of the server, or the engine would be judged on lost writes.
# PostgreSQL comes from Debian's packages (.ci/postgres installs them). Under root the
# cluster belongs to the `postgres` user, as initdb and postgres require.
set -euo pipefail
action="${1:?start or stop}"
workdir="${2:?the workdir}"

bin="$(for dir in /usr/lib/postgresql/*/bin; do [ -x "$dir/pg_ctl" ] && echo "$dir"; done | sort -V | tail -n 1)"
if [ -z "$bin" ]; then
    echo "postgres-cluster.sh: no PostgreSQL server binaries under /usr/lib/postgresql (source .ci/postgres)" >&2
    exit 1
fi

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
start)
    port="${3:?the port}"
    if [ -f "$workdir/postgres.dir" ]; then
        data="$(cat "$workdir/postgres.dir")"
    else
        data="$(mktemp -d /tmp/smsim-live-postgres.XXXXXX)"
        echo "$data" >"$workdir/postgres.dir"
        if [ "$(id -u)" -eq 0 ]; then
            id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
            chown postgres "$data"
        fi
        as_owner "$bin/initdb" --pgdata="$data" --username=smsim --auth=trust --encoding=UTF8 --locale=C >/dev/null
    fi
    # A killed server leaves its pid file, which postgres removes once that pid is gone,
    # and its backends, which hold the shared memory for a moment after: a start right
    # after a kill may be refused, so it is tried again (bounded).
    for attempt in $(seq 1 25); do
        if as_owner "$bin/pg_ctl" --pgdata="$data" --log="$data/server.log" --wait --timeout=20 \
            --options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories='' \
                       -c fsync=off -c full_page_writes=off -c max_connections=100" \
            start >/dev/null; then
            break
        fi
        if [ "$attempt" -eq 25 ]; then
            tail -n 20 "$data/server.log" >&2
            exit 1
        fi
        sleep 0.2
    done
    head -n 1 "$data/postmaster.pid" >"$workdir/postgres.pid"
    ;;
stop)
    [ -f "$workdir/postgres.dir" ] || exit 0
    data="$(cat "$workdir/postgres.dir")"
    as_owner "$bin/pg_ctl" --pgdata="$data" --mode=immediate --wait --timeout=10 stop >/dev/null 2>&1 || true
    rm -rf "$data" "$workdir/postgres.dir"
    ;;
*)
    echo "postgres-cluster.sh: unknown action '$action' (start or stop)" >&2
    exit 2
    ;;
esac
