"""Socket configuration errors stop hvagent with exit status 2 naming the key, without a
traceback, and without creating anything (issue 15, found item 11)."""

from __future__ import annotations

import subprocess
import sys

from tests.client import free_port


def start(tmp_path, *sets: str) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-m", "agent", "--libvirt-uri", "test:///default"]
    args += ["--listen", f"127.0.0.1:{free_port()}"]
    args += [a for s in sets for a in ("--set", s)]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=tmp_path)


def test_unknown_socket_group_exits_2_naming_the_key(tmp_path):
    sock = tmp_path / "hv.sock"
    proc = start(tmp_path, f'rpc.socket="{sock}"', 'rpc.socket_group="nosuchgroup"')
    assert proc.returncode == 2, proc.stderr
    assert "socket_group" in proc.stderr and "nosuchgroup" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not sock.exists()


def test_socket_in_a_missing_directory_is_refused_not_created(tmp_path):
    sock = tmp_path / "no" / "such" / "dir" / "hv.sock"
    proc = start(tmp_path, f'rpc.socket="{sock}"')
    assert proc.returncode == 2, proc.stderr
    assert "[rpc] socket" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "no").exists()
