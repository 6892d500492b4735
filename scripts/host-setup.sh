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
#   scripts/host-setup.sh --package-tools  only the tools that build and test the Debian
#                                          package (make deb, tests/package)
#   scripts/host-setup.sh --bench-tools    only what `make bench` drives (wrk)
set -euo pipefail

PACKAGES=(
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients libvirt-dev pkg-config
    qemu-system-x86 qemu-utils cpio busybox-static gcc python3-venv
    openssl  # scripts/test-ca.sh (test PKI for the STOMP/TLS tests)
    systemd  # systemd-analyze verify in tests/integration/test_systemd_unit.py
    mtools  # floppy payload images (mformat/mcopy; agent/runtime/payloads.py)
)
# make deb (debian/rules: debhelper, dh_python3, pip for the bundled wheels) and
# tests/package (lintian, debootstrap for a Debian 12 root, systemd-nspawn to boot it).
PACKAGE_TOOLS=(
    debhelper dh-python dpkg-dev python3-pip python3-setuptools python3-wheel
    lintian debootstrap systemd-container
)
BENCH_TOOLS=(wrk)  # bench/rpc_ping.py, bench/stomp_ping.py
QEMU_CONF=/etc/libvirt/qemu.conf
MARKER="# hvagent test rig v2"
SPICE_PKI=/etc/pki/libvirt-spice  # test CA + server cert for SPICE TLS
READY_TIMEOUT=60  # seconds to wait for libvirtd to answer

packages_only=false
package_tools=false
bench_tools=false
case "${1:-}" in
    "") ;;
    --packages-only) packages_only=true ;;
    --package-tools) package_tools=true ;;
    --bench-tools) bench_tools=true ;;
    *) echo "usage: $0 [--packages-only | --package-tools | --bench-tools]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -ne 0 ]; then
    echo "host-setup: must run as root" >&2
    exit 1
fi

# --- packages -------------------------------------------------------------------------
# dpkg-query rather than `dpkg -s`: a removed package whose config files remain is missing.
installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }
install_missing() {
    missing=()
    for pkg in "$@"; do
        installed "$pkg" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        apt-get install -y -q --no-install-recommends "${missing[@]}"
    fi
}
if $package_tools; then
    install_missing "${PACKAGE_TOOLS[@]}"
    echo "host-setup: ok: package tools: ${#missing[@]} installed"
    exit 0
fi
if $bench_tools; then
    install_missing "${BENCH_TOOLS[@]}"
    echo "host-setup: ok: bench tools: ${#missing[@]} installed"
    exit 0
fi
install_missing "${PACKAGES[@]}"

# --- users and groups (libvirtd refuses to start without them) -------------------------
getent group kvm >/dev/null || groupadd -r kvm
getent group libvirt-qemu >/dev/null || groupadd -r libvirt-qemu
getent passwd libvirt-qemu >/dev/null \
    || useradd -r -g libvirt-qemu -G kvm -d /var/lib/libvirt -s /usr/sbin/nologin libvirt-qemu

# --- SPICE TLS: a self-made test CA and server certificate (tests read the CA) -----------
if [ ! -s "$SPICE_PKI/server-cert.pem" ]; then
    mkdir -p "$SPICE_PKI"
    (
        cd "$SPICE_PKI"
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=hvagent test CA" \
            -keyout ca-key.pem -out ca-cert.pem 2>/dev/null
        openssl req -newkey rsa:2048 -nodes -subj "/CN=$(hostname)" \
            -keyout server-key.pem -out server.csr 2>/dev/null
        openssl x509 -req -in server.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial \
            -days 3650 -out server-cert.pem 2>/dev/null
        rm -f server.csr
    )
fi

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
# SPICE TLS with the test CA above; hvagent's [virt] spice_tls must say the same.
spice_tls = 1
spice_tls_x509_cert_dir = "$SPICE_PKI"
EOF
    conf_state=written
    if pgrep -x libvirtd >/dev/null && ! $packages_only; then
        # libvirtd reads qemu.conf at start only.
        echo "host-setup: restarting libvirtd for the new $QEMU_CONF" >&2
        pkill -x libvirtd
        timeout 60 bash -c 'while pgrep -x libvirtd >/dev/null; do sleep 0.2; done'
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
