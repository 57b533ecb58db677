#!/usr/bin/env bash
# Fresh-machine set-up for connector-build (Debian 12, run as root).
#
#   1. installs docker.io, docker-registry, debootstrap, curl (only what is missing)
#   2. starts dockerd if no engine answers
#   3. starts a local registry on 127.0.0.1:5000 (config: scripts/registry.yml)
#   4. builds a Debian bookworm + Python 3.11 root image with debootstrap,
#      imports it and pushes it to the local registry (skipped when already there)
#   5. writes the digest-pinned reference to /var/lib/connector-build/root-image.ref
#      and prints it on stdout as the last line
#   6. checks the image (python --version, timezone)
#
# Idempotent; a second run takes seconds. All logging goes to stderr, stdout
# carries only the final reference. Safe with CI=true and no stdin.
set -Eeuo pipefail

# ---------------------------------------------------------------- settings --
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REGISTRY_CONFIG="$SCRIPT_DIR/registry.yml"
REGISTRY_ADDR="127.0.0.1:5000"
REGISTRY_DATA="/var/lib/connector-build/registry"   # must match registry.yml
STATE_DIR="/var/lib/connector-build"
CACHE_DIR="/var/cache/connector-build"
REF_FILE="$STATE_DIR/root-image.ref"
DOCKERD_LOG="/var/log/connector-build-dockerd.log"
REGISTRY_LOG="/var/log/connector-build-registry.log"
BUILD_LOG="/var/log/connector-build-rootfs.log"

IMAGE_REPO="connector-build/debian-python"
IMAGE_TAG="3.11-bookworm"
IMAGE="$REGISTRY_ADDR/$IMAGE_REPO:$IMAGE_TAG"

SUITE="bookworm"
MIRROR="http://deb.debian.org/debian"
SECURITY_MIRROR="http://deb.debian.org/debian-security"
# netbase: /etc/services + /etc/protocols (socket.getservbyname etc.), as in
# the official python images. No compilers on purpose.
ROOTFS_INCLUDE="python3,python3-pip,python3-venv,python-is-python3,tzdata,ca-certificates,netbase"
# Bump when the rootfs recipe below changes: it is part of the cache key, the
# tarball name and an image label, so a changed recipe forces a rebuild.
ROOTFS_RECIPE_REV=1

WAIT_DOCKERD_S=60
WAIT_REGISTRY_S=30

export DEBIAN_FRONTEND=noninteractive
export LC_ALL=C

# ----------------------------------------------------------------- helpers --
log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: ERROR: %s\n' "$*" >&2; exit 1; }
trap 'rc=$?; printf "setup: ERROR: command failed (exit %s) at line %s: %s\n" "$rc" "$LINENO" "$BASH_COMMAND" >&2' ERR

T0=$SECONDS
elapsed() { echo "$((SECONDS - T0))s"; }

[ "$(id -u)" = 0 ] || die "must run as root (apt-get, dockerd, debootstrap)"
[ -r "$REGISTRY_CONFIG" ] || die "missing $REGISTRY_CONFIG"

mkdir -p "$STATE_DIR" "$CACHE_DIR" "$REGISTRY_DATA"

# One setup at a time (two CI steps or a developer + CI on the same machine).
exec 9>"$STATE_DIR/setup.lock"
if ! flock -n 9; then
    log "another setup.sh is running; waiting for its lock (max 30 min)"
    flock -w 1800 9 || die "timed out waiting for $STATE_DIR/setup.lock"
fi

# ------------------------------------------------------- 1. host packages --
pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

install_packages() {
    local missing=() p
    # Note: the machine image ships a docker *client* in /usr/local/bin, so
    # `command -v docker` proves nothing; check the Debian packages instead.
    for p in docker.io docker-registry debootstrap curl; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "packages present: docker.io docker-registry debootstrap curl"
        return
    fi
    log "installing: ${missing[*]}"
    # Keep package postinsts from starting services (Debian's docker-registry
    # would start on :5000 with htpasswd auth). Only if no policy exists.
    local own_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        own_policy=1
    fi
    local rc=0
    {
        apt-get update -q &&
        apt-get install -y -q -o Dpkg::Options::=--force-confdef \
            -o Dpkg::Options::=--force-confold "${missing[@]}"
    } </dev/null >&2 9>&- || rc=$?   # 9>&-: a service a postinst starts must not hold our lock
    [ "$own_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ "$rc" = 0 ] || die "apt-get install ${missing[*]} failed (exit $rc)"
    log "installed ${missing[*]} ($(elapsed))"
}

# Live (non-zombie) PIDs among those given. PID 1 on this kind of VM reaps
# orphans only lazily, so a stopped daemon can linger as a zombie for a while.
live_pids() {
    local pid state
    for pid in "$@"; do
        state="$(sed -n 's/^.*) \(.\) .*$/\1/p' "/proc/$pid/stat" 2>/dev/null || true)"
        case "$state" in ''|Z|X) ;; *) echo "$pid" ;; esac
    done
}

# ------------------------------------------------------------ 2. dockerd --
ensure_dockerd() {
    if docker info >/dev/null 2>&1; then
        log "docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"
        return
    fi
    # shellcheck disable=SC2046
    if [ -n "$(live_pids $(pgrep -x dockerd || true))" ]; then
        log "dockerd process exists but does not answer yet; waiting"
    else
        log "starting dockerd (log: $DOCKERD_LOG)"
        # setsid: survive the caller's process group being killed (CI step end,
        # timeout). All fds redirected (and the lock fd closed) so that
        # $(setup.sh) and the next run's flock do not hang on them.
        # tini -s (docker.io depends on tini) is a child subreaper: it reaps the
        # exited containerd-shims at once; PID 1 on this kind of VM is not an
        # init and reaps orphans only lazily (zombies pile up meanwhile).
        local init=()
        if command -v tini >/dev/null; then init=(tini -s --); fi
        setsid nohup "${init[@]}" dockerd </dev/null >>"$DOCKERD_LOG" 2>&1 9>&- &
    fi
    local i
    for ((i = 0; i < WAIT_DOCKERD_S; i++)); do
        if docker info >/dev/null 2>&1; then
            log "docker engine is up after ${i}s"
            return
        fi
        sleep 1
    done
    log "last lines of $DOCKERD_LOG:"
    tail -n 20 "$DOCKERD_LOG" >&2 || true
    die "docker engine did not answer within ${WAIT_DOCKERD_S}s; see $DOCKERD_LOG"
}

# ------------------------------------------------------------ 3. registry --
registry_status() {  # prints the HTTP code of /v2/ ("000" = nothing answers)
    curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://$REGISTRY_ADDR/v2/" 2>/dev/null || true
}

# PIDs of Debian's packaged registry (the init script runs
# `docker-registry serve /etc/docker/registry/config.yml`).
debian_registry_pids() {
    local pid
    # shellcheck disable=SC2046
    for pid in $(live_pids $(pgrep -x docker-registry || true)); do
        if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '/etc/docker/registry/config.yml'; then
            echo "$pid"
        fi
    done
}

ensure_registry() {
    local code pids i
    code="$(registry_status)"
    if [ "$code" = 200 ]; then
        log "registry on $REGISTRY_ADDR answers /v2/ with 200; reusing it"
        return
    fi
    if [ "$code" != 000 ]; then
        log "something on $REGISTRY_ADDR answers /v2/ with HTTP $code, not 200 (auth-protected or foreign registry)"
        pids="$(debian_registry_pids)"
        if [ -z "$pids" ]; then
            die "port 5000 is taken by something that is not Debian's docker-registry; stop it (see: ss -ltnp 'sport = :5000')"
        fi
        log "it is Debian's packaged docker-registry (pid ${pids//$'\n'/ }, /etc/docker/registry/config.yml); stopping it"
        /etc/init.d/docker-registry stop >/dev/null 2>&1 || true
        for pid in $pids; do kill "$pid" 2>/dev/null || true; done
        for ((i = 0; i < 10; i++)); do
            [ "$(registry_status)" = 000 ] && break
            sleep 1
        done
        [ "$(registry_status)" = 000 ] || die "port 5000 still answers after stopping Debian's registry"
    fi
    # shellcheck disable=SC2046
    if [ -n "$(live_pids $(pgrep -f "docker-registry serve $REGISTRY_CONFIG" || true))" ]; then
        log "our registry process exists but does not answer yet; waiting"
    else
        log "starting registry on $REGISTRY_ADDR (config: $REGISTRY_CONFIG, data: $REGISTRY_DATA, log: $REGISTRY_LOG)"
        setsid nohup docker-registry serve "$REGISTRY_CONFIG" </dev/null >>"$REGISTRY_LOG" 2>&1 9>&- &
    fi
    for ((i = 0; i < WAIT_REGISTRY_S; i++)); do
        if curl -fsS -o /dev/null --max-time 5 "http://$REGISTRY_ADDR/v2/" 2>/dev/null; then
            log "registry is up after ${i}s"
            return
        fi
        sleep 1
    done
    log "last lines of $REGISTRY_LOG:"
    tail -n 20 "$REGISTRY_LOG" >&2 || true
    die "registry did not answer http://$REGISTRY_ADDR/v2/ within ${WAIT_REGISTRY_S}s; see $REGISTRY_LOG"
}

# ---------------------------------------------------------- 4. root image --
MANIFEST_ACCEPT="application/vnd.docker.distribution.manifest.v2+json"
MANIFEST_ACCEPT_OCI="application/vnd.oci.image.manifest.v1+json"

ROOTFS_KEY="$(printf '%s\n' "$SUITE" minbase "$ROOTFS_INCLUDE" "$ROOTFS_RECIPE_REV" | sha256sum | cut -c1-16)"
ROOTFS_TAR="$CACHE_DIR/rootfs-$SUITE-$ROOTFS_KEY.tar"
KEY_LABEL="org.connector-build.rootfs-key"

# Manifest digest of $IMAGE as the registry reports it (empty if absent).
registry_digest() {
    curl -fsS --max-time 10 -o /dev/null -D - \
        -H "Accept: $MANIFEST_ACCEPT" -H "Accept: $MANIFEST_ACCEPT_OCI" \
        "http://$REGISTRY_ADDR/v2/$IMAGE_REPO/manifests/$IMAGE_TAG" 2>/dev/null |
        tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: *\(sha256:[0-9a-f]\{64\}\)$/\1/p' || true
}

# Does the image behind $IMAGE in the registry carry our current recipe key?
registry_image_is_current() {
    local manifest config_digest
    manifest="$(curl -fsS --max-time 10 -H "Accept: $MANIFEST_ACCEPT" -H "Accept: $MANIFEST_ACCEPT_OCI" \
        "http://$REGISTRY_ADDR/v2/$IMAGE_REPO/manifests/$IMAGE_TAG" 2>/dev/null)" || return 1
    config_digest="$(printf '%s' "$manifest" | tr -d ' \n\t' |
        sed -n 's/.*"config":{[^}]*"digest":"\(sha256:[0-9a-f]\{64\}\)".*/\1/p')"
    [ -n "$config_digest" ] || return 1
    curl -fsS --max-time 10 "http://$REGISTRY_ADDR/v2/$IMAGE_REPO/blobs/$config_digest" 2>/dev/null |
        grep -q "\"$KEY_LABEL\":\"$ROOTFS_KEY\""
}

# Unmount anything left mounted under a directory (deepest first).
umount_under() {
    local dir="$1" m
    for m in $(awk -v d="$dir/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r); do
        umount -l "$m" 2>/dev/null || true
    done
}

run_logged() {  # run a command, output to $BUILD_LOG; show its tail on failure
    local rc=0
    "$@" </dev/null >>"$BUILD_LOG" 2>&1 9>&- || rc=$?
    if [ "$rc" != 0 ]; then
        log "'$*' failed (exit $rc); last lines of $BUILD_LOG:"
        tail -n 40 "$BUILD_LOG" >&2 || true
        return "$rc"
    fi
}

build_rootfs_tarball() {
    local tmp root
    # Leftovers of an interrupted build are never reused: drop them.
    for tmp in "$CACHE_DIR"/build.*; do
        [ -e "$tmp" ] || continue
        log "removing leftover of an interrupted build: $tmp"
        umount_under "$tmp"
        rm -rf --one-file-system "$tmp"
    done
    rm -f "$CACHE_DIR"/rootfs-*.tar.part

    tmp="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
    root="$tmp/rootfs"
    # shellcheck disable=SC2064
    trap "umount_under '$tmp'; rm -rf --one-file-system '$tmp'" EXIT
    : >"$BUILD_LOG"
    log "debootstrap $SUITE (minbase, +$ROOTFS_INCLUDE) into $root (log: $BUILD_LOG)"
    mkdir -p "$CACHE_DIR/debs"
    run_logged debootstrap --variant=minbase --include="$ROOTFS_INCLUDE" \
        --cache-dir="$CACHE_DIR/debs" "$SUITE" "$root" "$MIRROR"
    log "debootstrap done ($(elapsed)); customizing rootfs"

    # apt sources like the official debian image, then pull in point-release
    # and security updates (python3.11 gets security fixes there).
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    # Never start services inside the image (as in Docker's debian images).
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 0755 "$root/usr/sbin/policy-rc.d"
    cp /etc/resolv.conf "$root/etc/resolv.conf"
    mount -t proc proc "$root/proc"
    run_logged chroot "$root" apt-get update -q
    run_logged chroot "$root" apt-get -y -q -o Dpkg::Options::=--force-confold dist-upgrade
    run_logged chroot "$root" apt-get clean
    umount "$root/proc"

    # pip may install into the system Python, as in the official python images.
    rm -f "$root"/usr/lib/python3*/EXTERNALLY-MANAGED
    # UTC
    ln -sfn /usr/share/zoneinfo/Etc/UTC "$root/etc/localtime"
    echo Etc/UTC >"$root/etc/timezone"
    printf 'tzdata tzdata/Areas select Etc\ntzdata tzdata/Zones/Etc select UTC\n' |
        chroot "$root" debconf-set-selections
    # Host-specific files: docker bind-mounts its own over these at run time.
    : >"$root/etc/resolv.conf"
    : >"$root/etc/hostname"
    # Caches and logs.
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.deb \
        "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/partial/* \
        "$root"/var/cache/debconf/*-old "$root"/var/lib/dpkg/*-old \
        "$root"/var/log/apt/* "$root"/var/log/dpkg.log "$root"/var/log/alternatives.log \
        "$root"/root/.cache "$root"/tmp/* "$root"/var/tmp/*
    find "$root/usr/lib" -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
    [ -x "$root/usr/bin/python3" ] && [ -e "$root/usr/bin/python" ] && [ -e "$root/usr/bin/pip" ] ||
        die "rootfs is missing python3/python/pip"

    log "packing rootfs"
    tar --numeric-owner -C "$root" -cf "$ROOTFS_TAR.part" .
    mv -f "$ROOTFS_TAR.part" "$ROOTFS_TAR"   # complete tarball appears atomically
    # Older recipes' tarballs are of no further use.
    find "$CACHE_DIR" -maxdepth 1 -name "rootfs-$SUITE-*.tar" ! -name "$(basename "$ROOTFS_TAR")" -delete
    umount_under "$tmp"
    rm -rf --one-file-system "$tmp"
    trap - EXIT
    log "rootfs tarball ready: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1), $(elapsed))"
}

local_image_is_current() {
    [ "$(docker image inspect --format "{{ index .Config.Labels \"$KEY_LABEL\" }}" "$IMAGE" 2>/dev/null || true)" = "$ROOTFS_KEY" ]
}

ensure_root_image() {
    local digest
    digest="$(registry_digest)"
    if [ -n "$digest" ] && registry_image_is_current; then
        log "registry already has $IMAGE ($digest, recipe $ROOTFS_KEY); not rebuilding"
        if ! docker image inspect "$REGISTRY_ADDR/$IMAGE_REPO@$digest" >/dev/null 2>&1; then
            log "local engine lacks it; pulling"
            docker pull -q "$IMAGE" >&2
        fi
        return
    fi
    if [ -n "$digest" ]; then
        log "registry has $IMAGE but from another recipe; rebuilding"
    else
        log "registry does not have $IMAGE; building it"
    fi
    if local_image_is_current; then
        log "local engine already has $IMAGE for recipe $ROOTFS_KEY; pushing it"
    else
        if [ -s "$ROOTFS_TAR" ]; then
            log "reusing cached rootfs tarball $ROOTFS_TAR"
        else
            build_rootfs_tarball
        fi
        log "docker import -> $IMAGE"
        docker import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'ENV LANG=C.UTF-8' \
            --change "LABEL $KEY_LABEL=$ROOTFS_KEY" \
            --change 'CMD ["python3"]' \
            --message "connector-build root image: debian $SUITE minbase + python3 (recipe $ROOTFS_KEY)" \
            "$ROOTFS_TAR" "$IMAGE" >&2
    fi
    log "docker push $IMAGE"
    docker push "$IMAGE" >&2
    log "pushed ($(elapsed))"
}

# --------------------------------------------------------- 5. pinned ref --
resolve_ref() {
    local digest ref
    digest="$(registry_digest)"
    [ -n "$digest" ] || die "registry has no manifest for $IMAGE after push"
    ref="$IMAGE@$digest"
    # The engine must know the image under exactly this digest (this is what
    # `docker pull $REGISTRY_ADDR/$IMAGE_REPO@$digest` resolves to).
    if ! docker image inspect --format '{{range .RepoDigests}}{{println .}}{{end}}' "$IMAGE" 2>/dev/null |
        grep -qx "$REGISTRY_ADDR/$IMAGE_REPO@$digest"; then
        log "local $IMAGE is not $digest; pulling by digest"
        docker pull -q "$REGISTRY_ADDR/$IMAGE_REPO@$digest" >&2
        docker tag "$REGISTRY_ADDR/$IMAGE_REPO@$digest" "$IMAGE"
    fi
    printf '%s\n' "$ref" >"$REF_FILE.tmp"
    mv -f "$REF_FILE.tmp" "$REF_FILE"
    log "root image: $ref (written to $REF_FILE)"
    ROOT_IMAGE_REF="$ref"
}

# ------------------------------------------------------------ 6. checks --
verify_image() {
    local out
    out="$(docker run --rm --network none "$1" sh -c 'python --version && cat /etc/timezone' 2>&1)" ||
        die "docker run $1 failed: $out"
    case "$out" in
        "Python 3.11."*) ;;
        *) die "expected Python 3.11.x from $1, got: $out" ;;
    esac
    printf '%s\n' "$out" | grep -qx 'Etc/UTC' || die "expected /etc/timezone Etc/UTC in $1, got: $out"
    log "image check ok: $(printf '%s' "$out" | tr '\n' ' ')"
}

# ====================================================================== uv ==
# The installer connector-build mounts into install steps: uv's static (musl) build, which
# runs in any base image, taken from its PyPI wheel.
UV_VERSION="0.13.8"
UV_DIR="$STATE_DIR/tools"
ensure_uv() {
    local have=""
    [ -x "$UV_DIR/uv" ] && have="$("$UV_DIR/uv" --version 2>/dev/null || true)"
    case "$have" in
        "uv $UV_VERSION"*) return 0 ;;
    esac
    log "installing uv $UV_VERSION (static build) into $UV_DIR"
    local work
    work="$(mktemp -d)"
    pip download --quiet --no-deps --only-binary :all: --platform musllinux_1_1_x86_64 \
        -d "$work" "uv==$UV_VERSION" 9>&- >&2 || die "could not download uv $UV_VERSION from PyPI"
    python3 -m zipfile -e "$work"/uv-*.whl "$work/x" 9>&- >&2 || die "could not unpack the uv wheel"
    mkdir -p "$UV_DIR"
    install -m 0755 "$work"/x/uv-*.data/scripts/uv "$UV_DIR/uv.tmp"
    mv -f "$UV_DIR/uv.tmp" "$UV_DIR/uv"
    rm -rf "$work"
    "$UV_DIR/uv" --version >&2 || die "the installed uv does not run"
}

# ===================================================== fixture base images ==
# The bundled fixtures carry a placeholder digest: point them at the image this machine
# built, with the tool's own layout-preserving edit (`upgrade-base-image`).
fill_fixture_base_images() {
    local repo="$SCRIPT_DIR/.."
    command -v cargo >/dev/null || die "cargo is needed to build connector-build"
    log "building connector-build to point the fixtures at $1"
    (cd "$repo" && cargo build --quiet --bin connector-build --bin connector-build-hooks) 9>&- >&2 ||
        die "cargo build failed"
    "$repo/target/debug/connector-build" --connectors-dir "$repo/connectors-fixtures" \
        upgrade-base-image --to "$1" 9>&- >&2 || die "could not point the fixtures at $1"
}

# ===================================================================== main ==
install_packages
ensure_dockerd
ensure_registry
ensure_root_image
resolve_ref
verify_image "$ROOT_IMAGE_REF"
ensure_uv
fill_fixture_base_images "$ROOT_IMAGE_REF"
log "done in $(elapsed)"
printf '%s\n' "$ROOT_IMAGE_REF"
