"""The built package: name and version, paths and modes, conffiles, relations, lintian.

The lintian warnings that remain must be exactly those README.md lists with a reason.
"""

from __future__ import annotations

import re
import stat
import subprocess
import tomllib
from pathlib import Path

from agent import __version__
from tests.package.conftest import ROOT, field, relation_names

UNIT = "lib/systemd/system/hvagent.service"


def contents(deb: Path) -> dict[str, tuple[int, str]]:
    """path -> (mode, owner/group) of every member of the data archive."""
    out = subprocess.run(
        ["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    members = {}
    for line in out.splitlines():
        perms, owner, _size, _date, _time, name = line.split(None, 5)
        name = name.split(" -> ")[0].removeprefix("./").rstrip("/")
        mode = 0
        for i, ch in enumerate(perms[1:]):
            if ch != "-":
                mode |= 1 << (8 - i)
        members[name] = (mode, owner)
    return members


def test_version_is_single_sourced(deb):
    changelog = subprocess.run(
        ["dpkg-parsechangelog", "-S", "Version"],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout.strip()
    assert changelog == __version__, "debian/changelog and agent/__init__.py must agree"
    assert field(deb, "Version") == __version__
    assert deb.name == f"hvagent_{__version__}_amd64.deb"


def test_paths_modes_and_owners(deb):
    files = contents(deb)
    expect = {
        "usr/bin/hvagent": 0o755,
        "usr/bin/hvagent-client": 0o755,
        UNIT: 0o644,
        "etc/hvagent/hvagent.toml": 0o644,
        "etc/hvagent/hvagent.toml.d": 0o755,
        "usr/lib/tmpfiles.d/hvagent.conf": 0o644,
        "usr/lib/hvagent/agent/daemon.py": 0o644,
        "usr/lib/hvagent/jsonrpcserver/request-schema.json": 0o644,
        "usr/share/doc/hvagent/README.md": 0o644,
        "usr/share/doc/hvagent/copyright": 0o644,
        "usr/share/man/man8/hvagent.8.gz": 0o644,
        "usr/share/man/man1/hvagent-client.1.gz": 0o644,
    }
    for path, mode in expect.items():
        assert path in files, f"{path} missing from the package"
        assert stat.S_IMODE(files[path][0]) == mode, f"{path}: {oct(files[path][0])}"
    assert all(owner == "root/root" for _mode, owner in files.values())
    # No byte code in the package (py3compile makes it at install), no stray venv bits.
    assert not [p for p in files if "__pycache__" in p or p.endswith(".pyc")]
    assert not [p for p in files if p.startswith("usr/lib/hvagent/bin")]


def test_shipped_files_are_the_repositorys(deb, tmp_path):
    subprocess.run(["dpkg-deb", "-x", str(deb), str(tmp_path)], check=True)
    assert (tmp_path / UNIT).read_bytes() == (ROOT / "systemd/hvagent.service").read_bytes()
    conf = tmp_path / "etc/hvagent/hvagent.toml"
    assert conf.read_bytes() == (ROOT / "conf/hvagent.toml").read_bytes()
    tmpfiles = (tmp_path / "usr/lib/tmpfiles.d/hvagent.conf").read_text()
    assert re.search(r"^d /run/hvagent\s+0751 root root", tmpfiles, re.M)
    assert re.search(r"^d /var/log/hvagent/console\s+0750 root root", tmpfiles, re.M)
    assert re.search(r"^d /var/lib/hvagent\s+0700 root root", tmpfiles, re.M)
    assert re.search(r"^d /run/ovirt-vmconsole-console\s+0755 root root", tmpfiles, re.M)
    # The agent package whole: every module and every data file pyproject.toml ships with it.
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]
    shipped = [
        f"{package.replace('.', '/')}/{name}" for package, names in data.items() for name in names
    ]
    shipped += [str(p.relative_to(ROOT)) for p in (ROOT / "agent").rglob("*.py")]
    for rel in shipped:
        installed = tmp_path / "usr/lib/hvagent" / rel
        assert installed.read_bytes() == (ROOT / rel).read_bytes(), f"{rel} not shipped as is"
    launcher = (tmp_path / "usr/bin/hvagent").read_text()
    assert launcher.startswith("#!/usr/bin/python3 -I\n")
    assert 'sys.path.insert(0, "/usr/lib/hvagent")' in launcher


def test_conffiles(deb, tmp_path):
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path)], check=True)
    assert (tmp_path / "conffiles").read_text().split() == ["/etc/hvagent/hvagent.toml"]


def test_relations(deb):
    depends = relation_names(field(deb, "Depends"))
    for name in (
        "libvirt-daemon-system",
        "qemu-system-x86",
        "qemu-utils",
        "python3-libvirt",
        "python3-lxml",
        "python3-prometheus-client",
        "python3-jsonschema",
        "python3-pycdlib",  # payload ISOs (Debian 12: 1.12)
    ):
        assert name in depends
    # The bundled libraries must not drag in their older Debian versions.
    for bundled in ("python3-aiohttp", "python3-yarl", "python3-aiosignal"):
        assert bundled not in depends
    assert re.search(r"python3 \(<< 3\.12\)", field(deb, "Depends")), "cp311 wheels"
    assert set(relation_names(field(deb, "Recommends"))) == {"mtools"}


def test_bundle_is_what_bundle_txt_pins(deb):
    files = contents(deb)
    pins = re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "debian/bundle.txt").read_text(), re.M)
    assert pins
    for name, version in pins:
        dist = [
            p
            for p in files
            if re.fullmatch(rf"usr/lib/hvagent/{name}-{version}\.dist-info", p, re.I)
        ]
        assert dist, f"{name} {version} not bundled"


def lintian_tags(deb: Path) -> set[tuple[str, str]]:
    proc = subprocess.run(
        ["lintian", "--pedantic", "--allow-root", str(deb)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    tags = set()
    for line in proc.stdout.splitlines():
        m = re.match(r"^([EWIPX]): hvagent(?: \w+)?: (\S+)", line)
        if m:
            tags.add((m.group(1), m.group(2)))
    assert proc.returncode in (0, 1), proc.stderr  # 1: tags of the fail-on level (errors)
    return tags


def test_lintian_no_errors_and_warnings_documented(deb):
    tags = lintian_tags(deb)
    errors = sorted(t for kind, t in tags if kind == "E")
    assert not errors, errors
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### lintian", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^- `([a-z0-9-]+)`", section, re.M))
    warnings = {t for kind, t in tags if kind == "W"}
    assert warnings <= documented, f"undocumented lintian warnings: {warnings - documented}"
