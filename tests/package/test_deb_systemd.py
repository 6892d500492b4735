"""The package under real systemd: a Debian 12 root booted with `systemd-nspawn -b`.

One scenario, in order (the tests share the booted container and run in file order):
install -> enabled, not started; start -> active through READY=1, watchdog pings arrive,
the local socket answers; with [rpc] socket_group = "libvirt" a member of libvirt reaches
the socket and anyone else does not; a VM's console socket is handed to [virt]
console_socket_group under the unit's sandbox; stop -> the orderly stop is in the journal;
upgrade to a newer build -> the admin's edit of /etc/hvagent/hvagent.toml is kept and the
running daemon is restarted; purge -> everything the package put on the host is gone.

The admin's edit is the libvirt URI (the test driver), so a daemon that still serves after
the upgrade also proves the edit is in force.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from agent import __version__
from tests.package import rootfs

CONF = "/etc/hvagent/hvagent.toml"


def wait_for(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.3)


def newer_build(deb: Path, work: Path) -> Path:
    """The same package as version <v>+test1, its shipped config changed upstream too."""
    tree = work / "tree"
    subprocess.run(["dpkg-deb", "-R", str(deb), str(tree)], check=True)
    control = tree / "DEBIAN/control"
    control.write_text(
        re.sub(r"^Version: .*$", f"Version: {__version__}+test1", control.read_text(), flags=re.M)
    )
    conf = tree / CONF.lstrip("/")
    conf.write_text(conf.read_text() + "# a line added by the newer build\n")
    sums = tree / "DEBIAN/md5sums"
    digest = subprocess.run(
        ["md5sum", CONF.lstrip("/")], cwd=tree, capture_output=True, text=True, check=True
    ).stdout
    lines = [ln for ln in sums.read_text().splitlines() if not ln.endswith(CONF.lstrip("/"))]
    sums.write_text("\n".join([*lines, digest.strip()]) + "\n")
    out = work / f"hvagent_{__version__}+test1_amd64.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-b", str(tree), str(out)],
        check=True,
        capture_output=True,
    )
    return out


@pytest.fixture(scope="module")
def box(deb, debian_root, tmp_path_factory):
    work = tmp_path_factory.mktemp("nspawn")
    upgrade = newer_build(deb, work)
    with rootfs.overlay(debian_root) as root:
        shutil.copy(deb, root / "root" / deb.name)
        shutil.copy(upgrade, root / "root" / upgrade.name)
        container = rootfs.Container(root, work / "console.log")
        try:
            container.boot()
            container.deb, container.upgrade = f"/root/{deb.name}", f"/root/{upgrade.name}"
            yield container
        finally:
            container.shutdown()


def show(box, *props: str) -> dict[str, str]:
    out = box.run("systemctl", "show", "hvagent.service", *(f"-p{p}" for p in props)).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def journal(box) -> str:
    return box.run("journalctl", "-u", "hvagent.service", "--no-pager", "-o", "cat").stdout


def test_install_enables_but_does_not_start(box):
    box.run("dpkg", "-i", box.deb)
    assert box.run("systemctl", "is-enabled", "hvagent.service").stdout.strip() == "enabled"
    state = box.run("systemctl", "is-active", "hvagent.service", check=False).stdout.strip()
    assert state == "inactive"
    # tmpfiles.d ran at install: the directories exist before the first start.
    dirs = ("/run/hvagent", "/var/log/hvagent/console", "/var/lib/hvagent")
    modes = box.run("stat", "-c", "%n %a %U:%G", *dirs).stdout.splitlines()
    assert modes == [
        "/run/hvagent 751 root:root",
        "/var/log/hvagent/console 750 root:root",
        "/var/lib/hvagent 700 root:root",
    ]


def test_start_becomes_active_through_ready_and_pings_the_watchdog(box):
    conf = box.run("cat", CONF).stdout
    edited = conf.replace('uri = "qemu:///system"', 'uri = "test:///default"')
    assert edited != conf
    box.run("sh", "-c", f"cat > {CONF} <<'EOF'\n{edited}EOF")
    # Type=notify: `systemctl start` returns once hvagent sent READY=1 (after recovery).
    box.run("systemctl", "start", "hvagent.service", timeout=300)
    props = show(box, "Type", "ActiveState", "SubState", "WatchdogUSec", "MainPID")
    assert props["Type"] == "notify"
    assert (props["ActiveState"], props["SubState"]) == ("active", "running"), props
    assert props["WatchdogUSec"] == "30s"
    assert "recovery done" in journal(box)

    first = int(show(box, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"])
    # hvagent pings every WatchdogSec/2 = 15 s; each WATCHDOG=1 moves the timestamp.
    later = wait_for(
        "a watchdog ping",
        lambda: int(show(box, "WatchdogTimestampMonotonic")["WatchdogTimestampMonotonic"]) > first,
        timeout=60,
    )
    assert later

    # The local socket works under the unit's hardening (CAP_CHOWN only, ProtectSystem).
    reply = box.run("hvagent-client", "Host", "getCapabilities")
    caps = json.loads(reply.stdout)
    assert caps["packages2"]["hvagent"]["version"] == __version__
    sock = box.run("stat", "-c", "%a %U:%G", "/run/hvagent/hvagent.sock").stdout.strip()
    assert sock == "660 root:root"


def test_socket_group_member_reaches_the_socket(box):
    # README: socket_group = "libvirt" lets libvirt's members use hvagent-client without root.
    box.run("sh", "-c", f"printf '[rpc]\\nsocket_group = \"libvirt\"\\n' > {CONF}.d/group.toml")
    box.run("useradd", "-m", "-G", "libvirt", "hvop")
    box.run("useradd", "-m", "hvother")
    box.run("systemctl", "restart", "hvagent.service", timeout=300)
    sock = box.run("stat", "-c", "%a %U:%G", "/run/hvagent/hvagent.sock").stdout.strip()
    assert sock == "660 root:libvirt"
    member = box.run("runuser", "-u", "hvop", "--", "hvagent-client", "Host", "ping2")
    assert json.loads(member.stdout) is True
    other = box.run(
        "runuser", "-u", "hvother", "--", "hvagent-client", "Host", "ping2", check=False
    )
    assert other.returncode == 3, other.stdout + other.stderr  # unreachable: permission denied
    box.run("rm", f"{CONF}.d/group.toml")


def test_console_socket_is_handed_to_its_group_under_the_units_sandbox(box):
    """[virt] console_socket_group through the unit's hardening (ProtectSystem=strict, the
    capability set): a VM's serial console socket, owned by another user as QEMU's is, is
    opened to the group once the VM runs. The test driver binds no socket: the test makes
    the one QEMU would, at the path hvagent gives it."""
    drop_in = f"printf '[virt]\\nconsole_socket_group = \"libvirt\"\\n' > {CONF}.d/console.toml"
    box.run("sh", "-c", drop_in)
    box.run("systemctl", "restart", "hvagent.service", timeout=300)
    vm_id = "6c7d8e9f-0a1b-4c2d-8e3f-4a5b6c7d8e9f"
    sock = f"/run/ovirt-vmconsole-console/{vm_id}.sock"
    bind = f"import socket; socket.socket(socket.AF_UNIX).bind({sock!r})"
    box.run("python3", "-c", bind)
    box.run("chown", "hvother:hvother", sock)
    box.run("chmod", "0700", sock)
    params = {
        "vmID": vm_id,
        "vmParams": {
            "vmId": vm_id,
            "vmName": "console-socket",
            "memSize": 64,
            "devices": [
                {"type": "console", "specParams": {"consoleType": "serial", "enableSocket": True}}
            ],
        },
    }
    box.run("sh", "-c", f"cat > /root/create.json <<'EOF'\n{json.dumps(params)}\nEOF")
    box.run("hvagent-client", "-f", "/root/create.json", "VM", "create")
    wait_for(
        "the VM Up",
        lambda: "Up" in box.run("hvagent-client", "VM", "getStats", f"vmID={vm_id}").stdout,
    )
    # hvagent changes the socket before it reports Up
    assert box.run("stat", "-c", "%a %U:%G", sock).stdout.strip() == "760 hvother:libvirt"
    box.run("hvagent-client", "VM", "destroy", f"vmID={vm_id}")
    box.run("rm", "-f", sock, f"{CONF}.d/console.toml")


def test_stop_logs_the_orderly_stop(box):
    box.run("systemctl", "stop", "hvagent.service", timeout=120)
    assert show(box, "ActiveState", "Result") == {"ActiveState": "inactive", "Result": "success"}
    log = journal(box)
    # The daemon's own account, in order: the signal, RPC closed before libvirt, goodbye.
    steps = ["SIGTERM received: orderly shutdown", "stopped RPC in", "stopped libvirt in", "bye"]
    at = [log.find(step) for step in steps]
    assert -1 not in at and at == sorted(at), log


def test_upgrade_keeps_config_edits_and_restarts_hvagent(box):
    box.run("systemctl", "start", "hvagent.service", timeout=300)
    before = show(box, "MainPID")["MainPID"]
    # apt runs dpkg like this when the admin keeps their version of a changed conffile.
    box.run("dpkg", "-i", "--force-confdef", "--force-confold", box.upgrade, timeout=300)
    version = box.run("dpkg-query", "-W", "-f=${Version}", "hvagent").stdout
    assert version == f"{__version__}+test1"
    conf = box.run("cat", CONF).stdout
    assert 'uri = "test:///default"' in conf
    assert "a line added by the newer build" not in conf
    assert "a line added by the newer build" in box.run("cat", f"{CONF}.dpkg-dist").stdout
    props = show(box, "ActiveState", "MainPID", "NRestarts")
    assert props["ActiveState"] == "active"
    assert props["MainPID"] not in ("0", before), "postinst try-restarted hvagent"
    assert json.loads(box.run("hvagent-client", "Host", "ping2").stdout) is True


def test_purge_removes_it(box):
    box.run("dpkg", "--purge", "hvagent", timeout=300)
    state = box.run("systemctl", "is-active", "hvagent.service", check=False).stdout.strip()
    assert state == "inactive"
    for path in (
        "/etc/hvagent",
        "/lib/systemd/system/hvagent.service",
        "/etc/systemd/system/multi-user.target.wants/hvagent.service",
        "/usr/lib/hvagent",
        "/usr/bin/hvagent",
        "/var/log/hvagent",
        "/var/lib/hvagent",
        "/usr/lib/tmpfiles.d/hvagent.conf",
    ):
        assert box.run("test", "-e", path, check=False).returncode == 1, f"{path} left behind"
    listed = box.run("dpkg-query", "-W", "hvagent", check=False)
    assert listed.returncode != 0, listed.stdout
