"""Package fixtures: the built .deb (scripts/build-deb.sh, once per session) and a cached
Debian 12 root holding everything the package depends on (tests/package/rootfs.py).

HVAGENT_DEB=path/to/hvagent_*.deb tests a package built elsewhere instead of building one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.package import rootfs

ROOT = Path(__file__).parents[2]
TOOLS = ("dpkg-buildpackage", "dh", "lintian", "debootstrap", "systemd-nspawn", "nsenter")


def _need_root_and_tools() -> None:
    if os.geteuid() != 0:
        pytest.fail("the package tests build roots and mount overlays: run them as root")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing {missing}: run `scripts/host-setup.sh --package-tools`")


@pytest.fixture(scope="session")
def deb() -> Path:
    _need_root_and_tools()
    if os.environ.get("HVAGENT_DEB"):
        return Path(os.environ["HVAGENT_DEB"]).resolve()
    proc = subprocess.run(
        [str(ROOT / "scripts" / "build-deb.sh")],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    built = re.search(r"^build-deb: (\S+\.deb)$", proc.stdout, re.M)
    assert built, proc.stdout
    return ROOT / built.group(1)


def field(deb: Path, name: str) -> str:
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True
    ).stdout.strip()


def relation_names(value: str) -> list[str]:
    """Package names of a Depends-style field: first alternative, no versions or :any."""
    names = []
    for rel in filter(None, (r.strip() for r in value.split(","))):
        first = rel.split("|")[0].strip()
        names.append(re.split(r"[\s(:]", first, maxsplit=1)[0])
    return names


@pytest.fixture(scope="session")
def debian_root(deb: Path) -> Path:
    """A bookworm root with the package's Depends and Recommends installed (cached)."""
    wanted = relation_names(field(deb, "Depends")) + relation_names(field(deb, "Recommends"))
    return rootfs.cached_root(wanted)
