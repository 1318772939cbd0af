#!/usr/bin/env bash
# A private MariaDB server for tests, its whole state under one directory.
#
#   scripts/mariadb.sh start  DIR   # start (initialising DIR on first use); prints the URL on stdout
#   scripts/mariadb.sh stop   DIR   # clean shutdown; succeeds when not running; the data stays
#   scripts/mariadb.sh url    DIR   # prints the URL
#   scripts/mariadb.sh pid    DIR   # prints the server pid (fails when not running)
#   scripts/mariadb.sh status DIR   # exit 0 iff running
#
# `start` prints exactly one line on stdout, `mysql://tars:tars2015@127.0.0.1:PORT/test`, and
# everything else on stderr. The server is detached from the caller (its own session, stdio on
# DIR/mysqld.err), so a harness that reads the script's stdout until EOF does not hang.
#
# Layout of DIR:
#   data/          the datadir (initialised once; a later `start` reuses it)
#   mysqld.sock    unix socket (root@localhost, empty password)
#   mysqld.pid     pid file      mysqld.err   error log      install.log  mariadb-install-db output
#   port           the TCP port (chosen once, reused by every later `start` so URLs stay valid)
#   url            the URL       tmp/         the server's tmpdir
#   ca.pem ca-key.pem server-cert.pem server-key.pem   self-signed TLS material (needs openssl)
#
# Users: tars@'%' and tars@localhost with password tars2015, root@localhost (socket) and
# root@127.0.0.1 (TCP), both with an empty password; all with every privilege.
# Databases: db_tars, tars_stat, tars_property, test.
#
# It never reads /etc/mysql (--no-defaults everywhere), never uses port 3306 and never touches
# /var/lib/mysql, so a system MariaDB on the same machine is left alone.
set -euo pipefail

readonly TARS_USER=tars
readonly TARS_PASSWORD=tars2015
readonly DATABASES=(db_tars tars_stat tars_property test)
readonly START_TIMEOUT=60
readonly STOP_TIMEOUT=30

log() { printf 'mariadb.sh: %s\n' "$*" >&2; }
die() {
    log "error: $*"
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: scripts/mariadb.sh start|stop|url|pid|status DIR
  start  DIR   start a private mariadbd with its state under DIR; prints its URL on stdout
  stop   DIR   shut it down cleanly (succeeds when not running); the data stays
  url    DIR   print the URL
  pid    DIR   print the server pid
  status DIR   exit 0 iff the server is running
EOF
    exit 2
}

# The first of the named programs found on PATH or in the usual sbin/bin directories.
find_bin() {
    local name dir
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1; then
            command -v "$name"
            return 0
        fi
        for dir in /usr/sbin /usr/local/sbin /sbin /usr/local/bin /usr/bin /usr/local/mysql/bin /usr/libexec; do
            if [ -x "$dir/$name" ]; then
                echo "$dir/$name"
                return 0
            fi
        done
    done
    return 1
}

install_mariadb() {
    if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
        die "mariadbd (or mysqld) not found; install the MariaDB server (e.g. the mariadb-server package)"
    fi
    local sudo=()
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null 2>&1 ||
            die "mariadbd not found and not root: install mariadb-server and mariadb-client"
        sudo=(sudo -n)
    fi
    log "mariadbd not found; installing mariadb-server and mariadb-client with apt-get"
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y mariadb-server mariadb-client >&2; then
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >&2
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y mariadb-server mariadb-client >&2 ||
            die "apt-get could not install mariadb-server"
    fi
}

# Sets MARIADBD, INSTALL_DB, ADMIN and CLIENT, installing MariaDB when the server is missing.
find_tools() {
    if ! MARIADBD=$(find_bin mariadbd mysqld); then
        install_mariadb
        MARIADBD=$(find_bin mariadbd mysqld) || die "mariadbd still not found after installing mariadb-server"
    fi
    INSTALL_DB=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found"
    ADMIN=$(find_bin mariadb-admin mysqladmin) || die "mariadb-admin not found (install mariadb-client)"
    CLIENT=$(find_bin mariadb mysql) || die "the mariadb client not found (install mariadb-client)"
}

# Sets DIR (absolute) and the paths inside it. With `create`, makes DIR when missing.
set_dir() {
    local arg=$1 create=${2:-}
    [ -n "$arg" ] || usage
    if [ -n "$create" ]; then
        mkdir -p "$arg"
    elif [ ! -d "$arg" ]; then
        return 1
    fi
    DIR=$(cd "$arg" && pwd -P)
    DATA="$DIR/data"
    SOCK="$DIR/mysqld.sock"
    PIDFILE="$DIR/mysqld.pid"
    ERRLOG="$DIR/mysqld.err"
}

# Whether $1 is a live (not zombie) mariadbd serving this DIR.
pid_alive() {
    local pid=$1 state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    if [ -r "/proc/$pid/status" ]; then
        state=$(awk '/^State:/ { print $2; exit }' "/proc/$pid/status" 2>/dev/null) || return 1
        case "$state" in "" | Z | X) return 1 ;; esac
        tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -qxF -- "--datadir=$DATA" || return 1
        return 0
    fi
    kill -0 "$pid" 2>/dev/null
}

# Prints the pid of the running server of DIR; fails when it is not running.
running_pid() {
    local pid file
    for file in "$PIDFILE" "$DIR/launch.pid"; do
        [ -r "$file" ] || continue
        pid=$(tr -dc '0-9' <"$file" 2>/dev/null || true)
        if pid_alive "$pid"; then
            echo "$pid"
            return 0
        fi
    done
    return 1
}

# Waits up to $2 seconds for pid $1 to be gone (or a zombie).
wait_gone() {
    local pid=$1 deadline=$((SECONDS + $2))
    while pid_alive "$pid"; do
        [ "$SECONDS" -lt "$deadline" ] || return 1
        sleep 0.1
    done
}

# Serialises start/stop on one DIR. fd 9 is closed for the server so it never holds the lock.
lock_dir() {
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>>"$DIR/.lock"
    flock -w 180 9 || die "timed out waiting for another mariadb.sh on $DIR"
}

port_in_use() {
    local hex
    hex=$(printf ':%04X ' "$1")
    grep -qi -- "$hex" /proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# A port nobody uses, below the kernel's ephemeral range (so no outgoing connection can take it
# while the server is down between a kill and a restart); falls back to asking the kernel.
free_port() {
    local low=32768 high port _
    if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
        read -r low high </proc/sys/net/ipv4/ip_local_port_range || true
    fi
    if [ -r /proc/net/tcp ] && [ "${low:-0}" -gt 12000 ]; then
        for _ in $(seq 1 500); do
            port=$((10000 + (RANDOM * 32768 + RANDOM) % (low - 10000)))
            [ "$port" != 3306 ] || continue
            if ! port_in_use "$port"; then
                echo "$port"
                return 0
            fi
        done
    fi
    if command -v python3 >/dev/null 2>&1; then
        port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        if [ -n "$port" ] && [ "$port" != 3306 ]; then
            echo "$port"
            return 0
        fi
    fi
    die "could not find a free TCP port"
}

# Self-signed CA and server certificate (once). Sets TLS_OPTS.
setup_tls() {
    TLS_OPTS=()
    if [ ! -s "$DIR/server-cert.pem" ] || [ ! -s "$DIR/server-key.pem" ] || [ ! -s "$DIR/ca.pem" ]; then
        if ! command -v openssl >/dev/null 2>&1; then
            log "warning: openssl not found; starting without TLS"
            return 0
        fi
        local tmp="$DIR/tls.tmp"
        rm -rf "$tmp"
        mkdir -p "$tmp"
        cat >"$tmp/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = tars-test
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
EOF
        if (
            cd "$tmp"
            openssl req -config openssl.cnf -x509 -newkey rsa:2048 -nodes -days 3650 -sha256 \
                -subj "/CN=tars-test-ca" -extensions ca_ext -keyout ca-key.pem -out ca.pem &&
                openssl req -config openssl.cnf -new -newkey rsa:2048 -nodes -sha256 \
                    -subj "/CN=localhost" -keyout server-key.pem -out server-req.pem &&
                openssl x509 -req -in server-req.pem -days 3650 -sha256 -CA ca.pem -CAkey ca-key.pem \
                    -set_serial "0x$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')" \
                    -extfile openssl.cnf -extensions server_ext -out server-cert.pem
        ) >"$DIR/tls.log" 2>&1; then
            mv "$tmp/ca.pem" "$tmp/ca-key.pem" "$tmp/server-key.pem" "$DIR/"
            mv "$tmp/server-cert.pem" "$DIR/" # last: its presence marks the set complete
            rm -rf "$tmp"
        else
            log "warning: generating TLS certificates failed; starting without TLS:"
            tail -n 20 "$DIR/tls.log" >&2 || true
            rm -rf "$tmp"
            return 0
        fi
    fi
    TLS_OPTS=(--ssl-ca="$DIR/ca.pem" --ssl-cert="$DIR/server-cert.pem" --ssl-key="$DIR/server-key.pem")
}

init_datadir() {
    [ ! -d "$DATA/mysql" ] || return 0
    log "initialising $DATA"
    rm -rf "$DATA"
    if ! "$INSTALL_DB" --no-defaults --auth-root-authentication-method=normal --datadir="$DATA" \
        "${USER_OPT[@]}" --skip-test-db --skip-name-resolve --tmpdir="$DIR/tmp" >"$DIR/install.log" 2>&1; then
        tail -n 40 "$DIR/install.log" >&2 || true
        rm -rf "$DATA"
        die "mariadb-install-db failed (full output in $DIR/install.log)"
    fi
}

# Starts mariadbd on $1 and waits until it answers. Returns 0 when up, 2 when the port was taken,
# 1 on any other failure (with the log tail on stderr).
launch() {
    local port=$1 offset pid deadline
    touch "$ERRLOG"
    offset=$(($(wc -c <"$ERRLOG" 2>/dev/null || echo 0) + 1))
    rm -f "$PIDFILE"
    setsid "$MARIADBD" --no-defaults "${USER_OPT[@]}" \
        --datadir="$DATA" --socket="$SOCK" --pid-file="$PIDFILE" --log-error="$ERRLOG" \
        --tmpdir="$DIR/tmp" --port="$port" --bind-address=127.0.0.1 \
        --skip-name-resolve --local-infile=1 --max-connections=500 \
        --innodb-buffer-pool-size=64M --innodb-log-file-size=48M \
        --innodb-flush-log-at-trx-commit=1 --innodb-use-native-aio=0 \
        --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
        "${TLS_OPTS[@]}" </dev/null >>"$ERRLOG" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$DIR/launch.pid"
    deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        if "$ADMIN" --no-defaults --socket="$SOCK" -uroot --connect-timeout=2 ping >/dev/null 2>&1; then
            return 0
        fi
        if ! pid_alive "$pid"; then
            wait "$pid" 2>/dev/null || true
            if tail -c "+$offset" "$ERRLOG" 2>/dev/null | grep -qiE 'address already in use|bind on tcp/ip port'; then
                return 2
            fi
            log "mariadbd exited during startup; the end of $ERRLOG:"
            tail -c "+$offset" "$ERRLOG" | tail -n 40 >&2 || true
            return 1
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "mariadbd did not accept connections within ${START_TIMEOUT}s; the end of $ERRLOG:"
            tail -c "+$offset" "$ERRLOG" | tail -n 40 >&2 || true
            kill -TERM "$pid" 2>/dev/null || true
            wait_gone "$pid" 10 || kill -KILL "$pid" 2>/dev/null || true
            return 1
        fi
        sleep 0.2
    done
}

# Databases and users; once per DIR (a later start keeps whatever the tests changed).
setup_accounts() {
    [ ! -e "$DIR/setup.done" ] || return 0
    local sql="" db
    for db in "${DATABASES[@]}"; do
        sql+="CREATE DATABASE IF NOT EXISTS \`$db\`;"
    done
    # Anonymous users, and the root@<hostname> entries that --skip-name-resolve ignores anyway.
    sql+="DELETE FROM mysql.global_priv WHERE User = '' OR Host NOT IN ('localhost', '127.0.0.1', '::1', '%');"
    sql+="DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1', '%');"
    sql+="FLUSH PRIVILEGES;"
    sql+="CREATE USER IF NOT EXISTS '$TARS_USER'@'%' IDENTIFIED BY '$TARS_PASSWORD';"
    sql+="CREATE USER IF NOT EXISTS '$TARS_USER'@'localhost' IDENTIFIED BY '$TARS_PASSWORD';"
    sql+="GRANT ALL PRIVILEGES ON *.* TO '$TARS_USER'@'%' WITH GRANT OPTION;"
    sql+="GRANT ALL PRIVILEGES ON *.* TO '$TARS_USER'@'localhost' WITH GRANT OPTION;"
    sql+="CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';"
    sql+="GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;"
    sql+="FLUSH PRIVILEGES;"
    "$CLIENT" --no-defaults --socket="$SOCK" -uroot -e "$sql" >&2 || die "creating the databases and users failed"
    touch "$DIR/setup.done"
}

url_of() { echo "mysql://$TARS_USER:$TARS_PASSWORD@127.0.0.1:$1/test"; }

cmd_start() {
    set_dir "$1" create
    lock_dir
    if [ "${#SOCK}" -ge 107 ]; then
        die "socket path too long for a unix socket (${#SOCK} bytes): $SOCK; use a shorter DIR"
    fi
    local port url
    if running_pid >/dev/null && [ -s "$DIR/port" ]; then
        url=$(url_of "$(cat "$DIR/port")")
        log "already running (pid $(running_pid)) at $url"
        echo "$url" >"$DIR/url"
        echo "$url"
        return 0
    fi
    find_tools
    USER_OPT=()
    if [ "$(id -u)" = 0 ]; then
        USER_OPT=(--user="$(whoami)")
    fi
    mkdir -p "$DIR/tmp"
    init_datadir
    setup_tls

    local status=1 attempt
    if [ -s "$DIR/port" ]; then
        port=$(cat "$DIR/port")
        [ "$port" != 3306 ] || die "refusing port 3306 (recorded in $DIR/port)"
        log "starting mariadbd on 127.0.0.1:$port (data in $DATA)"
        status=0
        launch "$port" || status=$?
        [ "$status" != 2 ] || die "port $port (recorded in $DIR/port) is in use by another process"
        [ "$status" = 0 ] || status=1
    else
        for attempt in 1 2 3 4 5 6 7 8; do
            port=$(free_port)
            log "starting mariadbd on 127.0.0.1:$port (data in $DATA)"
            status=0
            launch "$port" || status=$?
            [ "$status" = 2 ] || break
            log "port $port was taken (attempt $attempt); trying another"
        done
    fi
    [ "$status" = 0 ] || die "mariadbd did not start (log: $ERRLOG)"
    echo "$port" >"$DIR/port"
    setup_accounts
    url=$(url_of "$port")
    echo "$url" >"$DIR/url"
    log "mariadbd is up (pid $(running_pid || echo '?')) at $url, socket $SOCK"
    echo "$url"
}

cmd_stop() {
    if ! set_dir "$1"; then
        log "$1 does not exist; nothing to stop"
        return 0
    fi
    lock_dir
    local pid
    if ! pid=$(running_pid); then
        log "not running"
        return 0
    fi
    local admin
    if admin=$(find_bin mariadb-admin mysqladmin) &&
        timeout "$STOP_TIMEOUT" "$admin" --no-defaults --socket="$SOCK" -uroot --connect-timeout=5 shutdown >/dev/null 2>&1 &&
        wait_gone "$pid" "$STOP_TIMEOUT"; then
        log "stopped (pid $pid)"
        return 0
    fi
    log "shutdown over the socket did not stop pid $pid; sending SIGTERM"
    kill -TERM "$pid" 2>/dev/null || true
    if wait_gone "$pid" "$STOP_TIMEOUT"; then
        log "stopped (pid $pid)"
        return 0
    fi
    log "pid $pid ignored SIGTERM for ${STOP_TIMEOUT}s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    wait_gone "$pid" 10 || die "pid $pid did not exit"
}

cmd_url() {
    set_dir "$1" || die "$1 does not exist"
    [ -s "$DIR/url" ] || die "no URL recorded in $DIR (never started?)"
    cat "$DIR/url"
}

cmd_pid() {
    set_dir "$1" || die "$1 does not exist"
    running_pid || die "not running"
}

cmd_status() {
    set_dir "$1" || return 1
    running_pid >/dev/null
}

[ "$#" = 2 ] || usage
case "$1" in
start) cmd_start "$2" ;;
stop) cmd_stop "$2" ;;
url) cmd_url "$2" ;;
pid) cmd_pid "$2" ;;
status) cmd_status "$2" ;;
*) usage ;;
esac
