"""systemd/hvagent.service passes `systemd-analyze verify` and says what the design needs."""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.config import RpcConfig

UNIT = Path(__file__).parents[2] / "systemd" / "hvagent.service"


def test_unit_verifies(tmp_path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze missing: scripts/host-setup.sh installs the systemd package")
    hvagent = Path(sys.executable).with_name("hvagent")
    assert hvagent.exists(), "pip install -e . provides the hvagent console script"
    text = UNIT.read_text().replace("/usr/bin/hvagent", str(hvagent))
    copy = tmp_path / "hvagent.service"
    copy.write_text(text)
    proc = subprocess.run(
        [analyze, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    # Only complaints about our unit count (the host's other units may have their own).
    ours = [line for line in proc.stderr.splitlines() if "hvagent" in line]
    assert not ours, proc.stderr


def test_unit_declares_notify_watchdog_and_safe_kill_mode():
    cp = configparser.ConfigParser(strict=False, interpolation=None)
    cp.optionxform = str  # type: ignore[assignment,method-assign]
    cp.read(UNIT)
    svc, unit = cp["Service"], cp["Unit"]
    assert svc["Type"] == "notify" and int(svc["WatchdogSec"]) > 0
    assert svc["Restart"] == "on-failure"
    assert svc["KillMode"] in ("process", "mixed")
    assert "libvirtd.service" in unit["After"] and "libvirtd.service" in unit["Wants"]
    assert "libvirt-guests.service" in unit["Before"]
    # The fd limit leaves room for the connection cap (issue 15).
    assert int(svc["LimitNOFILE"]) >= 4 * RpcConfig().max_connections
