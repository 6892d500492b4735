#!/usr/bin/env bash
# Build hvagent's tiny real test guest from Debian packages (apt is the only network used):
#   OUTDIR/vmlinuz     the Debian cloud kernel
#   OUTDIR/initrd.img  busybox + qemu-ga + the few kernel modules it needs, /init from here
#   OUTDIR/stamp       hash of everything in tests/guest/; a matching stamp means no work
#
# Usage: tests/guest/build.sh [OUTDIR]   (default ${HVAGENT_GUEST_DIR:-/var/cache/hvagent/guest})
# Needs apt-get, dpkg, cpio and gzip (scripts/host-setup.sh installs them); root only to
# write the default OUTDIR or when the apt lists are empty.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
out=${1:-${HVAGENT_GUEST_DIR:-/var/cache/hvagent/guest}}

# Modules /init loads, in this order, each after its dependencies (virtio_pci first so the
# devices exist when the drivers for them register). Built-in ones are skipped.
WANT_MODULES=(virtio_pci virtio_console virtio_blk button evdev)
# Loaded by /init only for `payload_to=` (from /etc/modules.payload, after the ones above):
# the IDE cdrom (machine pc) and ISO 9660. The cloud kernel has no floppy nor AHCI driver.
PAYLOAD_MODULES=(ata_piix sr_mod isofs)
# For `watchdev` (hot-plugged NICs appear in /sys/class/net) and the balloon.
WANT_MODULES+=(virtio_net virtio_balloon)
MULTIARCH=x86_64-linux-gnu

die() { echo "guest build: $*" >&2; exit 1; }

inputs_hash=$(cd "$here" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum)
inputs_hash=${inputs_hash%% *}

up_to_date() {
    [ -f "$out/vmlinuz" ] && [ -f "$out/initrd.img" ] \
        && [ "$(cat "$out/stamp" 2>/dev/null)" = "$inputs_hash" ]
}

if up_to_date; then
    echo "guest build: $out is up to date"
    exit 0
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
exec 9>"$out/.lock"
flock 9  # a concurrent build of the same OUTDIR finishes first
if up_to_date; then
    echo "guest build: $out is up to date"
    exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root=$tmp/root  # the initramfs tree

installed() { [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]; }

# --- choose and fetch packages ---------------------------------------------------------
kernel_package() {  # the versioned package linux-image-cloud-amd64 currently points at
    apt-cache depends linux-image-cloud-amd64 2>/dev/null \
        | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }'
}
if ! kernel_pkg=$(kernel_package) || [ -z "$kernel_pkg" ]; then
    apt-get update -q  # empty apt lists (e.g. a slim container image)
    kernel_pkg=$(kernel_package)
fi
[ -n "$kernel_pkg" ] || die "cannot resolve linux-image-cloud-amd64"

# qemu-ga's shared libraries come from the host when installed there; the libraries in its
# dependency closure that the host lacks are fetched and unpacked next to it.
lib_pkgs=()
while read -r pkg; do
    installed "$pkg" || lib_pkgs+=("$pkg")
done < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts \
            --no-breaks --no-replaces --no-enhances qemu-guest-agent \
         | grep -v -e '^ ' -e '^<' -e '^qemu-guest-agent$' | sort -u)

mkdir -p "$tmp/debs" "$tmp/kernel" "$tmp/pkgs"
(cd "$tmp/debs" && apt-get download -q -o APT::Sandbox::User=root \
    "$kernel_pkg" qemu-guest-agent busybox-static "${lib_pkgs[@]}" >/dev/null)
for deb in "$tmp"/debs/*.deb; do
    case ${deb##*/} in
        linux-image-*) dpkg -x "$deb" "$tmp/kernel" ;;
        *) dpkg -x "$deb" "$tmp/pkgs" ;;
    esac
done
busybox=$tmp/pkgs/bin/busybox
qemu_ga=$tmp/pkgs/usr/sbin/qemu-ga
kver=$(basename "$tmp"/kernel/lib/modules/*)
moddir=$tmp/kernel/lib/modules/$kver

# --- initramfs tree ----------------------------------------------------------------------
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,run,tmp,root,etc/qemu,etc/acpi/PWRF} \
         "$root"/{var/lib,lib/modules,lib/$MULTIARCH,lib64}
ln -s ../run "$root/var/run"
chmod 1777 "$root/tmp"

install -m 0755 "$busybox" "$root/bin/busybox"
while read -r applet; do
    [ "$applet" = bin/busybox ] || ln -s /bin/busybox "$root/$applet"
done < <("$busybox" --list-full)

install -m 0755 "$here/init" "$root/init"
install -m 0755 "$here/shutdown" "$root/sbin/shutdown"
install -m 0755 "$here/acpi-power-button" "$root/etc/acpi/PWRF/00000080"

# qemu-ga, its libraries and the dynamic loader (at the path the binary names).
install -m 0755 "$qemu_ga" "$root/usr/sbin/qemu-ga"
ldd_out=$(LD_LIBRARY_PATH="$tmp/pkgs/lib/$MULTIARCH:$tmp/pkgs/usr/lib/$MULTIARCH" ldd "$qemu_ga")
if grep -q 'not found' <<<"$ldd_out"; then
    die "qemu-ga libraries missing: $ldd_out"
fi
while read -r kind path; do
    case $kind in
        lib) cp -L "$path" "$root/lib/$MULTIARCH/" ;;
        loader) cp -L "$path" "$root$path" ;;
    esac
done < <(awk '$2 == "=>" && $3 ~ /^\// { print "lib", $3 }
              $1 ~ /^\// { print "loader", $1 }' <<<"$ldd_out")

# Kernel modules: dependency closure of WANT_MODULES from modules.dep (busybox depmod, as
# the package ships none), listed in load order in /etc/modules for /init's insmod.
"$busybox" depmod -b "$tmp/kernel" "$kver"
declare -A path_of deps loaded
while IFS=: read -r path rest; do
    name=${path##*/}
    path_of[${name%.ko}]=$path
    deps[$path]=$rest
done <"$moddir/modules.dep"
load_order=()
add_module() {  # add_module PATH: its dependencies first, then itself
    local dep
    [ -z "${loaded[$1]:-}" ] || return 0
    loaded[$1]=1
    for dep in ${deps[$1]}; do add_module "$dep"; done
    load_order+=("$1")
}
list_modules() {  # list_modules FILE NAME...: their closure, minus those already listed
    local name path
    load_order=()
    for name in "${@:2}"; do
        if [ -n "${path_of[$name]:-}" ]; then
            add_module "${path_of[$name]}"
        elif ! grep -q "/$name\.ko\$" "$moddir/modules.builtin"; then
            die "kernel $kver has no module $name"
        fi
    done
    : >"$1"
    for path in "${load_order[@]}"; do
        cp "$moddir/$path" "$root/lib/modules/"
        echo "${path##*/}" >>"$1"
    done
}
list_modules "$root/etc/modules" "${WANT_MODULES[@]}"
list_modules "$root/etc/modules.payload" "${PAYLOAD_MODULES[@]}"

# --- outputs -----------------------------------------------------------------------------
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -n) \
    >"$out/initrd.img.new"
install -m 0644 "$tmp/kernel/boot/vmlinuz-$kver" "$out/vmlinuz.new"
mv "$out/initrd.img.new" "$out/initrd.img"
mv "$out/vmlinuz.new" "$out/vmlinuz"
echo "$inputs_hash" >"$out/stamp"
echo "guest build: $out: kernel $kver, initrd $(du -h "$out/initrd.img" | cut -f1)," \
     "modules: $(tr '\n' ' ' <"$root/etc/modules")," \
     "payload modules: $(tr '\n' ' ' <"$root/etc/modules.payload")"
