#!/usr/bin/env bash
# Root image recipe: a Debian root filesystem from packages, packed as a tarball for
# `docker import`. Run by `connector-build base-images root build` (embedded in the tool),
# as root, with its settings in the environment:
#
#   ROOT             empty folder to build the root filesystem in
#   OUT              tarball to write
#   SUITE VARIANT    debootstrap suite and variant (bookworm, minbase)
#   INCLUDE          comma-separated extra packages
#   MIRROR SECURITY_MIRROR DEBS_CACHE
#   ARCH             Debian architecture (amd64, arm64); default: the host's. Another one is
#                    bootstrapped with --foreign and finished under QEMU user-mode emulation
#                    (qemu-user-static registered in binfmt_misc with the F flag, so the
#                    chroot needs no copy of the emulator)
#
# The tool mounts nothing itself: this script mounts /proc in the chroot, and the tool
# unmounts whatever is left under ROOT's parent afterwards, even when the script failed.
set -Eeuo pipefail
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

: "${ROOT:?}" "${OUT:?}" "${SUITE:?}" "${VARIANT:?}" "${INCLUDE:?}" "${MIRROR:?}" \
  "${SECURITY_MIRROR:?}" "${DEBS_CACHE:?}"

mkdir -p "$DEBS_CACHE"
HOST_ARCH="$(dpkg --print-architecture)"
ARCH="${ARCH:-$HOST_ARCH}"
echo "debootstrap $SUITE $ARCH ($VARIANT, +$INCLUDE)"
if [ "$ARCH" = "$HOST_ARCH" ]; then
    debootstrap --variant="$VARIANT" --include="$INCLUDE" --cache-dir="$DEBS_CACHE" \
        "$SUITE" "$ROOT" "$MIRROR"
else
    # First stage unpacks on the host; the second runs the target's maintainer scripts.
    debootstrap --arch="$ARCH" --foreign --variant="$VARIANT" --include="$INCLUDE" \
        --cache-dir="$DEBS_CACHE" "$SUITE" "$ROOT" "$MIRROR"
    chroot "$ROOT" /bin/true || {
        echo "cannot run $ARCH programs: register qemu-user-static in binfmt_misc (scripts/setup.sh does)" >&2
        exit 1
    }
    echo "second stage under emulation"
    chroot "$ROOT" /debootstrap/debootstrap --second-stage
fi

# apt sources like the official debian image, then point-release and security updates
# (python3.11 gets security fixes there).
rm -f "$ROOT/etc/apt/sources.list"
cat >"$ROOT/etc/apt/sources.list.d/debian.sources" <<SOURCES
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
SOURCES
# Never start services inside the image (as in Docker's debian images).
printf '#!/bin/sh\nexit 101\n' >"$ROOT/usr/sbin/policy-rc.d"
chmod 0755 "$ROOT/usr/sbin/policy-rc.d"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
mount -t proc proc "$ROOT/proc"
chroot "$ROOT" apt-get update -q
chroot "$ROOT" apt-get -y -q -o Dpkg::Options::=--force-confold dist-upgrade
chroot "$ROOT" apt-get clean
umount "$ROOT/proc"

# pip may install into the system Python, as in the official python images.
rm -f "$ROOT"/usr/lib/python3*/EXTERNALLY-MANAGED
# UTC
ln -sfn /usr/share/zoneinfo/Etc/UTC "$ROOT/etc/localtime"
echo Etc/UTC >"$ROOT/etc/timezone"
printf 'tzdata tzdata/Areas select Etc\ntzdata tzdata/Zones/Etc select UTC\n' |
    chroot "$ROOT" debconf-set-selections
# Host-specific files: docker bind-mounts its own over these at run time.
: >"$ROOT/etc/resolv.conf"
: >"$ROOT/etc/hostname"
# Caches and logs.
rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/*.deb \
    "$ROOT"/var/cache/apt/*.bin "$ROOT"/var/cache/apt/archives/partial/* \
    "$ROOT"/var/cache/debconf/*-old "$ROOT"/var/lib/dpkg/*-old \
    "$ROOT"/var/log/apt/* "$ROOT"/var/log/dpkg.log "$ROOT"/var/log/alternatives.log \
    "$ROOT"/root/.cache "$ROOT"/tmp/* "$ROOT"/var/tmp/*
find "$ROOT/usr/lib" -name __pycache__ -type d -prune -exec rm -rf {} + 2>/dev/null || true
# What the packages asked for must be there (a root without them is useless to its family).
required=()
case ",$INCLUDE," in *,python3,*) required+=(usr/bin/python3 usr/bin/python usr/bin/pip) ;; esac
case ",$INCLUDE," in *,openjdk-*-jre-headless,*) required+=(usr/bin/java) ;; esac
for f in "${required[@]}"; do
    [ -e "$ROOT/$f" ] || { echo "the root filesystem has no /$f" >&2; exit 1; }
done

echo "packing $OUT"
tar --numeric-owner -C "$ROOT" -cf "$OUT" .
