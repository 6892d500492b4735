#!/usr/bin/env bash
# Prepare this host for hvagent's real-hypervisor tests: Debian packages, the users
# libvirt insists on, a permissive qemu.conf, and (unless --packages-only) running
# virtlogd + libvirtd without systemd. See shared/reference/rig.md.
#
# Run as root. Idempotent: each step checks first and only acts on what is missing,
# so a second run finishes in well under a second.
#
#   scripts/host-setup.sh                  everything, ends with libvirtd answering
#   scripts/host-setup.sh --packages-only  no daemons (for the embedded QEMU driver)
set -euo pipefail

PACKAGES=(
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config
    qemu-system-x86 qemu-utils cpio busybox-static gcc python3-venv
    systemd  # systemd-analyze verify in tests/integration/test_systemd_unit.py
)
QEMU_CONF=/etc/libvirt/qemu.conf
MARKER="# hvagent test rig"
READY_TIMEOUT=60  # seconds to wait for libvirtd to answer

packages_only=false
case "${1:-}" in
    "") ;;
    --packages-only) packages_only=true ;;
    *) echo "usage: $0 [--packages-only]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    echo "host-setup: must run as root" >&2
    exit 1
fi

# --- packages -------------------------------------------------------------------------
# dpkg-query rather than `dpkg -s`: a removed package whose config files remain is missing.
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
missing=()
for pkg in "${PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# --- users and groups (libvirtd refuses to start without them) -------------------------
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null \
    || useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

# --- qemu.conf: QEMU runs as root, libvirt leaves file ownership and labels alone -------
conf_state=unchanged
if ! grep -qxF "$MARKER" "$QEMU_CONF" 2>/dev/null; then
    if [ -e "$QEMU_CONF" ] && [ ! -e "$QEMU_CONF.hvagent-orig" ]; then
        cp -p "$QEMU_CONF" "$QEMU_CONF.hvagent-orig"
    fi
    cat >"$QEMU_CONF" <<EOF
$MARKER
# Written by hvagent's scripts/host-setup.sh; an earlier file is kept as qemu.conf.hvagent-orig.
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
EOF
    conf_state=written
    if pgrep -x libvirtd >/dev/null; then
        echo "host-setup: libvirtd is already running with the old $QEMU_CONF; restart it" >&2
    fi
fi

summary="packages: ${#missing[@]} installed; qemu.conf: $conf_state"

# --- daemons ---------------------------------------------------------------------------
if ! $packages_only; then
    mkdir -p /var/log/libvirt /var/lib/libvirt /run/libvirt
    pgrep -x virtlogd >/dev/null || virtlogd -d
    # Bounded wait (libvirtd probes QEMU's capabilities before its first answer, ~8 s),
    # (re)starting libvirtd whenever none runs: one on its way out, e.g. just after
    # `pkill libvirtd`, passes a single pgrep check and then exits. A start that fails
    # (the old one still holds the pid file) is retried on the next round.
    wait_for_libvirtd() {
        until virsh -c qemu:///system version 2>/dev/null; do
            pgrep -x libvirtd >/dev/null || libvirtd -d || true
            sleep 0.5
        done
    }
    export -f wait_for_libvirtd
    if ! version=$(timeout "$READY_TIMEOUT" bash -c wait_for_libvirtd); then
        echo "host-setup: libvirtd did not answer on qemu:///system within ${READY_TIMEOUT}s" >&2
        exit 1
    fi
    hypervisor=$(sed -n 's/^Running hypervisor: *//p' <<<"$version")
    summary+="; libvirtd pid $(pgrep -xo libvirtd) ready (${hypervisor:-unknown hypervisor})"
fi

echo "host-setup: ok: $summary"
