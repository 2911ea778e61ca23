#!/usr/bin/env bash
# Start or stop a throw-away PostgreSQL server for the tracking tests.
#
#   bash .ci/postgres.sh start     # prints the DSN on the last line of stdout
#   source .ci/postgres.sh start   # also exports TRACKING_TEST_PG_DSN in the calling shell
#   bash .ci/postgres.sh stop      # stops the server and deletes its data directory
#   bash .ci/postgres.sh dsn       # prints the DSN of a running server
#
# Idempotent: `start` on a running server only prints its DSN. Installs Debian's `postgresql`
# package when no server binaries are found. The server runs as a non-root user (postgres, or
# the caller when not root), listens on 127.0.0.1 only, and keeps its data under /tmp.
# Settings: TRACKING_TEST_PG_PORT (54329), TRACKING_TEST_PG_DIR (/tmp/llm-gateway-pg).

_pg_main() {
    local port="${TRACKING_TEST_PG_PORT:-54329}"
    local dir="${TRACKING_TEST_PG_DIR:-/tmp/llm-gateway-pg}"
    local db="tracking_test"
    local dsn="postgresql://postgres@127.0.0.1:${port}/${db}"
    local bindir user
    local PATH="$PATH:/usr/sbin:/sbin"  # runuser and useradd live there; restored on return

    _pg_bindir() {
        local found
        found="$( (ls -d /usr/lib/postgresql/*/bin 2>/dev/null || true) | sort -V | tail -n 1)"
        if [ -z "$found" ] && command -v pg_ctl >/dev/null 2>&1; then
            found="$(dirname "$(readlink -f "$(command -v pg_ctl)")")"
        fi
        echo "$found"
    }

    _pg_as() {  # run a command as the server's user
        if [ "$(id -u)" = "0" ]; then
            runuser -u "$user" -- "$@"
        else
            "$@"
        fi
    }

    bindir="$(_pg_bindir)"
    if [ "${1:-start}" = "start" ] && [ -z "$bindir" ]; then
        if [ "$(id -u)" != "0" ]; then
            echo "postgres.sh: no PostgreSQL server found; install Debian's postgresql package" >&2
            return 1
        fi
        echo "postgres.sh: installing Debian's postgresql package" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 || return 1
        bindir="$(_pg_bindir)"
    fi

    if [ "$(id -u)" = "0" ]; then
        user=postgres
        if ! id "$user" >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin "$user" || return 1
        fi
    else
        user="$(id -un)"
    fi

    case "${1:-start}" in
    start)
        if [ -n "$bindir" ] && [ -f "$dir/PG_VERSION" ] && _pg_as "$bindir/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
            echo "postgres.sh: already running on 127.0.0.1:${port}" >&2
        else
            if [ ! -f "$dir/PG_VERSION" ]; then
                rm -rf "$dir"
                mkdir -p "$dir"
                chown "$user" "$dir"
                chmod 700 "$dir"
                _pg_as "$bindir/initdb" -D "$dir" -U postgres -A trust --no-sync -E UTF8 >"$dir.initdb.log" 2>&1 \
                    || { cat "$dir.initdb.log" >&2; return 1; }
            fi
            # fsync off: the data is thrown away after the run, so durability only costs time.
            _pg_as "$bindir/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start \
                -o "-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
                >&2 || { cat "$dir/server.log" >&2; return 1; }
        fi
        if ! _pg_as "$bindir/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -tAc \
            "SELECT 1 FROM pg_database WHERE datname = '${db}'" | grep -q 1; then
            _pg_as "$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres "$db" || return 1
        fi
        export TRACKING_TEST_PG_DSN="$dsn"
        echo "$dsn"
        ;;
    stop)
        if [ -n "$bindir" ] && [ -f "$dir/PG_VERSION" ]; then
            _pg_as "$bindir/pg_ctl" -D "$dir" -m fast -w stop >&2 || true
        fi
        rm -rf "$dir" "$dir.initdb.log"
        ;;
    dsn)
        echo "$dsn"
        ;;
    *)
        echo "usage: postgres.sh start|stop|dsn" >&2
        return 2
        ;;
    esac
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    _pg_main "$@"
    exit $?
else
    _pg_main "$@"
fi
