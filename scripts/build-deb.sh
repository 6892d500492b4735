#!/usr/bin/env bash
# Build the Debian package: build/deb/hvagent_<version>_amd64.deb (see README, "Install on
# a host"). Needs the tools of `scripts/host-setup.sh --package-tools`.
#
# 1. The version is single-sourced: agent/__init__.py __version__ must equal the top entry
#    of debian/changelog (a native package: no Debian revision).
# 2. The bundled wheels (debian/bundle.txt, pinned by sha256) are downloaded once into
#    /var/cache/hvagent/bundle/<hash of bundle.txt> with the machine's pip configuration;
#    the build itself (debian/rules) never touches the network.
# 3. dpkg-buildpackage -b; its outputs are moved from .. into build/deb/.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=build/deb
CACHE=${HVAGENT_CACHE:-/var/cache/hvagent}

version=$(dpkg-parsechangelog -S Version)
code_version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' agent/__init__.py)
if [ "$version" != "$code_version" ]; then
    echo "build-deb: debian/changelog says $version, agent/__init__.py says $code_version" >&2
    exit 1
fi

bundle="$CACHE/bundle/$(sha256sum debian/bundle.txt | cut -c1-16)"
if [ ! -e "$bundle/.complete" ]; then
    rm -rf "$bundle.tmp"
    mkdir -p "$bundle.tmp"
    /usr/bin/python3 -m pip download -q --disable-pip-version-check --no-deps --require-hashes \
        --only-binary=:all: --no-binary=jsonrpcserver --platform manylinux_2_28_x86_64 \
        --python-version 3.11 --implementation cp --abi cp311 \
        -r debian/bundle.txt -d "$bundle.tmp"
    touch "$bundle.tmp/.complete"
    rm -rf "$bundle" && mv "$bundle.tmp" "$bundle"
fi

HVAGENT_BUNDLE_DIR="$bundle" dpkg-buildpackage -b -us -uc --no-sign >/tmp/hvagent-deb-build.log 2>&1 || {
    tail -40 /tmp/hvagent-deb-build.log >&2
    echo "build-deb: dpkg-buildpackage failed, full log in /tmp/hvagent-deb-build.log" >&2
    exit 1
}
mkdir -p "$OUT"
for f in ../hvagent_"$version"_*.deb ../hvagent_"$version"_*.buildinfo ../hvagent_"$version"_*.changes; do
    [ -e "$f" ] && mv -f "$f" "$OUT/"
done
debian/rules clean >/dev/null 2>&1  # the tree as it was: no debian/hvagent/ staging left
echo "build-deb: $OUT/$(cd "$OUT" && ls hvagent_"$version"_*.deb)"
