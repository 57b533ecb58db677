#!/usr/bin/env bash
# A second Docker engine on this machine, beside the one scripts/setup.sh runs, for
# multi-engine builds and their tests.
#
#   second-engine.sh start   start it (stopping leftovers of an earlier run first) and give it
#                            the root image; prints its address
#   second-engine.sh kill    stop the daemon only (what "an engine stops answering" looks like)
#   second-engine.sh resume  start the daemon again after `kill`, on the same data (images,
#                            build cache, volumes), as an engine that comes back does
#   second-engine.sh stop    stop it and remove everything it made (bridge, NAT rules, data)
#
# Why these flags: its own socket, data root, exec root and pidfile keep it apart from the
# first engine. It must NOT run with `--bridge none`: dockerd then deletes the default bridge
# interface docker0 at start-up, which the first engine's containers need. Instead it gets its
# own bridge, and, as it must not touch the first engine's iptables chains (--iptables=false),
# two FORWARD rules and a MASQUERADE rule of its own so install steps reach the package index.
# The daemon runs under another process name (a symlink), so `pgrep -x dockerd` in setup.sh
# still means the first engine only.
set -euo pipefail

# Overridable so that several such engines (the tests', the benchmark's) can coexist.
NAME=${CB_ENGINE_NAME:-cb-test-docker2}
SOCK=/run/$NAME.sock
HOST=unix://$SOCK
DATA=/var/lib/$NAME
EXEC=/run/$NAME-exec
PIDFILE=/run/$NAME.pid
BIN_DIR=/run/$NAME-bin
BRIDGE=${CB_ENGINE_BRIDGE:-cb-test-br2}
NET=${CB_ENGINE_NET:-172.31.254}
ADDR=$NET.1/24
SUBNET=$NET.0/24
LOG=/var/log/$NAME.log
REF_FILE=/var/lib/connector-build/root-image.ref
BASE_REF_FILE=/var/lib/connector-build/base-image.ref

log() { echo "second-engine: $*" >&2; }

add_rules() {
    iptables -I FORWARD -i "$BRIDGE" -j ACCEPT
    iptables -I FORWARD -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    iptables -t nat -A POSTROUTING -s "$SUBNET" ! -o "$BRIDGE" -j MASQUERADE
}

delete_rules() {
    while iptables -D FORWARD -i "$BRIDGE" -j ACCEPT 2>/dev/null; do :; done
    while iptables -D FORWARD -o "$BRIDGE" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT 2>/dev/null; do :; done
    while iptables -t nat -D POSTROUTING -s "$SUBNET" ! -o "$BRIDGE" -j MASQUERADE 2>/dev/null; do :; done
}

kill_daemon() {
    local pid
    pid=$(cat "$PIDFILE" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
        # dockerd gives running containers 10 s to stop before killing them.
        for _ in $(seq 1 60); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "dockerd $pid did not stop in 30 s; killing it"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    # Its own containerd, if the daemon died without stopping it.
    local cpid
    cpid=$(cat "$EXEC/containerd/containerd.pid" 2>/dev/null || true)
    if [ -n "$cpid" ] && kill -0 "$cpid" 2>/dev/null; then
        kill -TERM "$cpid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$PIDFILE"
}

cleanup() {
    kill_daemon
    delete_rules
    ip link del "$BRIDGE" 2>/dev/null || true
    # Anything the daemon left mounted under its roots, then the roots.
    grep -E " ($DATA|$EXEC)/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$DATA" "$EXEC" "$BIN_DIR" "$SOCK"
}

start() {
    [ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
    cleanup
    ip link add "$BRIDGE" type bridge
    ip addr add "$ADDR" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    add_rules
    mkdir -p "$BIN_DIR" "$DATA"
    ln -sf "$(command -v dockerd)" "$BIN_DIR/$NAME"
    launch
    # The root image by digest from the local registry, so it carries its RepoDigests (an
    # image moved with `docker save | docker load` does not, and would be pulled again).
    for ref_file in "$REF_FILE" "$BASE_REF_FILE"; do
        if [ -s "$ref_file" ]; then
            docker -H "$HOST" pull -q "$(cat "$ref_file")" >/dev/null
        fi
    done
    echo "$HOST"
}

# The daemon again, on what `start` set up and `kill` left: bridge, rules and data stay.
resume() {
    [ "$(id -u)" = 0 ] || { log "must run as root"; exit 1; }
    ip link show "$BRIDGE" >/dev/null 2>&1 || { log "no bridge $BRIDGE: run start first"; exit 1; }
    kill_daemon
    launch
    echo "$HOST"
}

launch() {
    local init=()
    if command -v tini >/dev/null; then init=(tini -s --); fi
    setsid nohup "${init[@]}" "$BIN_DIR/$NAME" \
        --host "$HOST" --data-root "$DATA" --exec-root "$EXEC" --pidfile "$PIDFILE" \
        --bridge "$BRIDGE" --iptables=false \
        </dev/null >>"$LOG" 2>&1 9>&- &
    for _ in $(seq 1 60); do
        if docker -H "$HOST" info >/dev/null 2>&1; then
            break
        fi
        sleep 0.5
    done
    docker -H "$HOST" info >/dev/null 2>&1 || { log "did not answer in 30 s; see $LOG"; tail -n 20 "$LOG" >&2; exit 1; }
}

case "${1:-}" in
start) start ;;
kill) kill_daemon ;;
resume) resume ;;
stop) cleanup ;;
*)
    echo "usage: $0 start|kill|resume|stop" >&2
    exit 2
    ;;
esac
