"""hvagent refuses to start with a plain listener off loopback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.client import free_port
from tests.stomp_client import ROOT


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[stomp]\nlisten = "0.0.0.0:{port}"\ntls = false\n', "[stomp] listen"),
        ('[stomp]\nlisten = ""\n[rpc]\nlisten = "0.0.0.0:{port}"\n', "[rpc] listen"),
    ],
)
def test_startup_refused_when_insecure(tmp_path, toml, named):
    conf = tmp_path / "hvagent.toml"
    conf.write_text(toml.format(port=free_port()) + '[libvirt]\nuri = "test:///default"\n')
    proc = subprocess.run(
        [sys.executable, "-m", "agent", "--config", str(conf)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "configuration error" in proc.stderr and named in proc.stderr, proc.stderr
    if "insecure" in toml or "0.0.0.0" in toml:
        assert "insecure = true" in proc.stderr
