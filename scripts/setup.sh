#!/usr/bin/env bash
# Fresh-machine set-up for connector-build (Debian 12, run as root).
#
#   1. installs docker.io, docker-registry, debootstrap, curl, iptables, tini, stunnel4,
#      openssl, openjdk-17-jdk-headless, skopeo, apache2-utils, qemu-user-static (only what
#      is missing)
#   2. starts dockerd if no engine answers; registers QEMU for linux/arm64 in binfmt_misc
#      (mounting it if needed) with the F flag, so arm64 containers run on this machine
#   3. starts a local registry on 127.0.0.1:5000 (config: scripts/registry.yml)
#   4. builds connector-build, and with it:
#      - the root image (base-images/roots.toml): Debian bookworm + Python 3.11 from
#        debootstrap, pushed to the local registry (skipped when the registry already has
#        the current recipe's image); address in /var/lib/connector-build/root-image.ref
#      - the python base image (base-images/python.toml): built, sanity-checked, published
#        to the local registry; its digest-pinned address goes to
#        /var/lib/connector-build/base-image.ref and is printed on stdout as the last line
#      - the root image debian-java (Debian bookworm + a headless JRE, from debootstrap) and
#        the java base image (base-images/java.toml) on it; address in
#        /var/lib/connector-build/java-base-image.ref
#      - the declarative base image (base-images/source-declarative-manifest.toml: the
#        Airbyte CDK, installed with uv, on the python base image); address in
#        /var/lib/connector-build/declarative-base-image.ref
#   5. moves the fixtures in connectors-fixtures/ onto the latest base image of their kind
#   6. installs the SBOM validator the tests use (cyclonedx-python-lib, hash-pinned in
#      scripts/sbom-validator.txt) into /var/lib/connector-build/sbom-validator
#   7. linux/arm64, in the background, off the critical path (it takes minutes under
#      emulation): the debian-python root from Debian's arm64 packages and the python base
#      image on it (`<version>-linux-arm64`; done when $STATE_DIR/arm64-base-image.ref
#      exists), the declarative base, then the debian-java root and the java base; each root
#      and family version then becomes one index over linux/amd64 and linux/arm64 under its
#      tag (the tag held the amd64 image alone, which the index lists unchanged). All done
#      when $STATE_DIR/arm64-java-base-image.ref exists; log $CACHE_DIR/setup-arm64.log.
#      The next set-up moves the fixtures onto the indexes. SETUP_ARM64=wait waits for it,
#      =no skips it.
#
# Idempotent; a second run takes seconds. All logging goes to stderr, stdout
# carries only the final reference (the python base image). Safe with CI=true and no stdin.
set -Eeuo pipefail

# ---------------------------------------------------------------- settings --
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REGISTRY_CONFIG="$SCRIPT_DIR/registry.yml"
REGISTRY_ADDR="127.0.0.1:5000"
REGISTRY_DATA="/var/lib/connector-build/registry"   # must match registry.yml
STATE_DIR="/var/lib/connector-build"
CACHE_DIR="/var/cache/connector-build"
# The tool reads these; set here so its state and caches are where this script says.
export CONNECTOR_BUILD_STATE_DIR="$STATE_DIR" CONNECTOR_BUILD_CACHE_DIR="$CACHE_DIR"
ROOT_REF_FILE="$STATE_DIR/root-image.ref"
BASE_REF_FILE="$STATE_DIR/base-image.ref"
JAVA_REF_FILE="$STATE_DIR/java-base-image.ref"
DECLARATIVE_REF_FILE="$STATE_DIR/declarative-base-image.ref"
DOCKERD_LOG="/var/log/connector-build-dockerd.log"
REGISTRY_LOG="/var/log/connector-build-registry.log"

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

# One setup at a time (two CI steps or a developer + CI on the same machine). The detached
# arm64 part (`setup.sh --arm64`, started by a set-up) has its own lock instead.
ARM64_ONLY=0
[ "${1:-}" = --arm64 ] && ARM64_ONLY=1
if [ "$ARM64_ONLY" = 1 ]; then
    :
else
exec 9>"$STATE_DIR/setup.lock"
if ! flock -n 9; then
    log "another setup.sh is running; waiting for its lock (max 30 min)"
    flock -w 1800 9 || die "timed out waiting for $STATE_DIR/setup.lock"
fi
fi

# ------------------------------------------------------- 1. host packages --
pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

install_packages() {
    local missing=() p
    # Note: the machine image ships a docker *client* in /usr/local/bin, so
    # `command -v docker` proves nothing; check the Debian packages instead.
    # stunnel4 and openssl: the TLS engine endpoint of tests/endpoints.rs.
    # openjdk-17-jdk-headless: javac and jar, which make the Java fixture's distribution.
    # python3-venv: the SBOM validator's virtual environment.
    # skopeo: reads what `publish` pushed, independently; apache2-utils: `htpasswd -B` for
    # the password-protected registry of tests/publish.rs.
    # qemu-user-static: linux/arm64 containers and the arm64 root's second stage.
    local packages=(docker.io docker-registry debootstrap curl iptables tini stunnel4 openssl
        openjdk-17-jdk-headless python3-venv skopeo apache2-utils qemu-user-static)
    for p in "${packages[@]}"; do
        pkg_installed "$p" || missing+=("$p")
    done
    if [ "${#missing[@]}" -eq 0 ]; then
        log "packages present: ${packages[*]}"
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

# ------------------------------------------------------------- 2b. QEMU --
# qemu-aarch64 in binfmt_misc with Debian's flags (OPF): F makes the kernel open the
# emulator at registration, so it works inside containers and chroots that lack it.
BINFMT=/proc/sys/fs/binfmt_misc
ensure_binfmt() {
    local conf=/usr/lib/binfmt.d/qemu-aarch64.conf entry="$BINFMT/qemu-aarch64"
    [ -r "$conf" ] || die "qemu-user-static did not install $conf"
    if [ ! -e "$BINFMT/register" ]; then
        log "mounting binfmt_misc on $BINFMT"
        mount -t binfmt_misc binfmt_misc "$BINFMT" || die "cannot mount binfmt_misc on $BINFMT"
    fi
    if [ -e "$entry" ] && ! grep -q '^flags: .*F' "$entry"; then
        log "qemu-aarch64 is registered without the F flag; re-registering"
        echo -1 >"$entry"
    fi
    if [ ! -e "$entry" ]; then
        grep -v '^#' "$conf" | head -n 1 >"$BINFMT/register" || die "cannot register qemu-aarch64 in binfmt_misc"
        log "registered qemu-aarch64 in binfmt_misc ($(sed -n 's/^flags: //p' "$entry"))"
    fi
    [ "$(cat "$BINFMT/status")" = enabled ] || echo 1 >"$BINFMT/status"
    grep -q '^enabled' "$entry" || echo 1 >"$entry"
    log "qemu-aarch64: $(head -n 1 "$entry"), flags $(sed -n 's/^flags: //p' "$entry")"
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

# ------------------------------------------------ 4. the tool and images --
# Root image, python base image and fixtures are the tool's own job (`connector-build
# base-images ...`); this script only builds the tool and calls it. Everything it prints
# besides the addresses we capture goes to stderr; the lock fd is closed for each call.
TOOL="$SCRIPT_DIR/../target/debug/connector-build"

build_tool() {
    command -v cargo >/dev/null || die "cargo is needed to build connector-build"
    log "building connector-build"
    (cd "$SCRIPT_DIR/.." && cargo build --quiet --bin connector-build --bin connector-build-hooks) 9>&- >&2 ||
        die "cargo build failed"
}

tool() { "$TOOL" "$@" 9>&-; }

write_ref() {  # atomically: file, reference
    printf '%s\n' "$2" >"$1.tmp"
    mv -f "$1.tmp" "$1"
}

# debootstrap root image: reused when the registry already holds the current recipe's image
# (seconds), else built from Debian packages and pushed. Its digest is recorded by the tool
# in $STATE_DIR/root-images/; root-image.ref is kept for older scripts.
ensure_root_image() {
    local ref
    log "root images (log of a rebuild: $CACHE_DIR/rootfs-<name>.log)"
    # Every debootstrap root a family uses; the python one is printed last.
    tool base-images root build debian-java --registry "$REGISTRY_ADDR" >/dev/null ||
        die "connector-build base-images root build debian-java failed"
    ref="$(tool base-images root build debian-python --registry "$REGISTRY_ADDR" | tail -n 1)" ||
        die "connector-build base-images root build failed"
    [ -n "$ref" ] || die "connector-build base-images root build printed no reference"
    write_ref "$ROOT_REF_FILE" "$ref"
    log "root image: $ref"
}

# The python base image family: build (from cache on a second run), sanity checks, publish
# (a no-op when the registry already has this very image), machine-local docs with the
# registry's digests.
ensure_base_image() {
    local ref
    tool base-images build python >/dev/null || die "building the python base image failed"
    tool base-images check python >&2 || die "the python base image failed its checks (report above)"
    ref="$(tool base-images publish python --with-older --registry "$REGISTRY_ADDR" | tail -n 1)" ||
        die "publishing the python base image failed"
    [ -n "$ref" ] || die "connector-build base-images publish printed no reference"
    write_ref "$BASE_REF_FILE" "$ref"
    log "python base image: $ref (written to $BASE_REF_FILE)"
    BASE_IMAGE_REF="$ref"
}

# The other families, as the python one: build (the declarative one on the published python
# image, with uv), check, publish; the address goes to a file the tests read.
ensure_family() {  # family, ref file, [base-images options, e.g. --platform linux/arm64]
    local ref
    tool base-images build "$1" --registry "$REGISTRY_ADDR" "${@:3}" >/dev/null || die "building the $1 base image failed"
    tool base-images check "$1" "${@:3}" >&2 || die "the $1 base image failed its checks (report above)"
    ref="$(tool base-images publish "$1" --with-older --registry "$REGISTRY_ADDR" "${@:3}" | tail -n 1)" ||
        die "publishing the $1 base image failed"
    [ -n "$ref" ] || die "connector-build base-images publish $1 printed no reference"
    write_ref "$2" "$ref"
    log "$1 base image: $ref (written to $2)"
}

# The bundled fixtures carry a placeholder digest: move them onto the latest published
# release of their family, with the tool's own layout-preserving edit.
upgrade_fixtures() {
    tool --connectors-dir "$SCRIPT_DIR/../connectors-fixtures" upgrade-base-image \
        --registry "$REGISTRY_ADDR" >&2 || die "could not move the fixtures onto their base images"
}

# ====================================================================== uv ==
# The installer connector-build mounts into install steps: uv's static (musl) build, which
# runs in any base image, taken from its PyPI wheel.
UV_VERSION="0.13.8"
# sha256 of uv-0.13.8-py3-none-musllinux_1_1_x86_64.whl on PyPI: pip refuses any other file.
UV_WHEEL_SHA256="29451c60f5e8b07403e0a175d5229efc36b0289b34143ff4aaa499a5dd52553a"
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
    printf 'uv==%s --hash=sha256:%s\n' "$UV_VERSION" "$UV_WHEEL_SHA256" >"$work/uv.txt"
    pip download --quiet --no-deps --only-binary :all: --platform musllinux_1_1_x86_64 \
        --require-hashes -r "$work/uv.txt" -d "$work" 9>&- >&2 ||
        die "could not download uv $UV_VERSION from PyPI with sha256 $UV_WHEEL_SHA256"
    python3 -m zipfile -e "$work"/uv-*.whl "$work/x" 9>&- >&2 || die "could not unpack the uv wheel"
    mkdir -p "$UV_DIR"
    install -m 0755 "$work"/x/uv-*.data/scripts/uv "$UV_DIR/uv.tmp"
    mv -f "$UV_DIR/uv.tmp" "$UV_DIR/uv"
    rm -rf "$work"
    "$UV_DIR/uv" --version >&2 || die "the installed uv does not run"
}

# ======================================================== SBOM validator ==
# cyclonedx-python-lib with its JSON schema validation, for tests/sbom.rs: a validator no one
# here wrote. Hash-pinned (scripts/sbom-validator.txt); reinstalled only when that file changes.
SBOM_VENV="$STATE_DIR/sbom-validator"
ensure_sbom_validator() {
    local lock="$SCRIPT_DIR/sbom-validator.txt" want
    want="$(sha256sum "$lock" | cut -d' ' -f1)"
    if [ "$(cat "$SBOM_VENV/.installed" 2>/dev/null || true)" = "$want" ]; then
        return 0
    fi
    log "installing the SBOM validator (cyclonedx-python-lib) into $SBOM_VENV"
    rm -rf "$SBOM_VENV"
    python3 -m venv "$SBOM_VENV" 9>&- >&2 || die "python3 -m venv failed; install python3-venv"
    "$SBOM_VENV/bin/pip" install --quiet --disable-pip-version-check --require-hashes \
        -r "$lock" 9>&- >&2 || die "installing the SBOM validator from PyPI failed"
    printf '%s\n' "$want" >"$SBOM_VENV/.installed"
}

# The linux/arm64 roots and base images, checked under emulation and published as
# `<version>-linux-arm64`, then each tag as the index over both platforms. Run detached by
# main (its own lock, so two set-ups never build it twice at once).
ARM64_REF_FILE="$STATE_DIR/arm64-base-image.ref"
ARM64_JAVA_REF_FILE="$STATE_DIR/arm64-java-base-image.ref"
ARM64_LOG="$CACHE_DIR/setup-arm64.log"
BOTH=linux/amd64,linux/arm64

# A root for both platforms (the amd64 one is current already) and the index over them.
ensure_root_index() {  # root name
    tool base-images --platform "$BOTH" root build "$1" --registry "$REGISTRY_ADDR" 8>&- >/dev/null ||
        die "arm64: connector-build base-images root build $1 --platform $BOTH failed"
}

# A family for both platforms in one publish: the arm64 image built and checked under
# emulation (amd64's is built and published already, so it comes from cache), pushed as
# `<version>-linux-arm64`, then the index over both under `<version>`. The arm64 image's
# address goes to the given file.
ensure_family_both() {  # family, ref file for the arm64 image
    local out ref
    out="$(tool base-images publish "$1" --with-older --platform "$BOTH" --registry "$REGISTRY_ADDR" 8>&-)" ||
        die "arm64: publishing $1 for $BOTH failed"
    ref="$(grep -e '-linux-arm64@' <<<"$out" | tail -n 1)"
    [ -n "$ref" ] || die "arm64: publishing $1 printed no linux/arm64 address"
    write_ref "$2" "$ref"
    log "arm64: $1: $ref, and one index over $BOTH under its version"
}

build_arm64() {
    exec 8>"$STATE_DIR/setup-arm64.lock"
    flock -w 3600 8 || die "timed out waiting for $STATE_DIR/setup-arm64.lock"
    local t0=$SECONDS
    log "arm64: python root image"
    ensure_root_index debian-python
    log "arm64: python base image"
    ensure_family_both python "$ARM64_REF_FILE"
    # The declarative base (manifest-only connectors): the CDK installed for arm64 with uv
    # natively, on the arm64 python base; checked under emulation.
    log "arm64: declarative base image"
    ensure_family_both source-declarative-manifest "$STATE_DIR/arm64-declarative-base-image.ref"
    log "arm64: java root image"
    ensure_root_index debian-java
    log "arm64: java base image"
    ensure_family_both java "$ARM64_JAVA_REF_FILE"
    log "arm64: done in $((SECONDS - t0))s"
}

ensure_arm64() {
    case "${SETUP_ARM64:-background}" in
        no) log "arm64: skipped (SETUP_ARM64=no)"; return ;;
        wait) build_arm64 9>&- 2>&1 | tee -a "$ARM64_LOG" >&2; return "${PIPESTATUS[0]}" ;;
    esac
    log "arm64: root and base image build in the background (log: $ARM64_LOG; done when $ARM64_REF_FILE exists)"
    setsid nohup bash "$SCRIPT_DIR/setup.sh" --arm64 </dev/null >>"$ARM64_LOG" 2>&1 9>&- &
}

if [ "$ARM64_ONLY" = 1 ]; then
    build_arm64
    exit 0
fi

# ===================================================================== main ==
install_packages
ensure_dockerd
ensure_binfmt
ensure_registry
build_tool
ensure_root_image
ensure_base_image
ensure_uv
ensure_sbom_validator
ensure_family java "$JAVA_REF_FILE"
ensure_family source-declarative-manifest "$DECLARATIVE_REF_FILE"
tool base-images docs --from-registry --registry "$REGISTRY_ADDR" \
    --out "$STATE_DIR/base-images/docs" >&2 || die "writing the machine's base image docs failed"
upgrade_fixtures
ensure_arm64
log "done in $(elapsed)"
printf '%s\n' "$BASE_IMAGE_REF"
