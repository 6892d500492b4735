"""hvagent-client over the daemon's local Unix socket; the socket's mode; logs keep no secrets."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
import sys
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")

CLIENT = str(Path(sys.executable).with_name("hvagent-client"))


async def cli(*args: str, stdin: bytes | None = None) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        CLIENT,
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(stdin), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_socket_mode_and_cli_verbs(rpc, daemon, tmp_path):
    sock = daemon.cfg.rpc.socket
    mode = os.stat(sock).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660

    code, out, _ = await cli("--socket", sock, "Host", "ping2")
    assert code == 0 and json.loads(out) is True

    vm_id = str(uuid.uuid4())
    params = tmp_path / "create.json"
    params.write_text(
        json.dumps({"vmParams": {"vmId": vm_id, "vmName": f"cli-{vm_id[:8]}", "memSize": 64}})
    )
    code, out, err = await cli("--socket", sock, "VM", "create", f"vmID={vm_id}", "-f", str(params))
    assert code == 0, err
    assert json.loads(out)["vmId"] == vm_id
    await rpc.wait_status(vm_id, "Up", 10)
    # name=value parsed as JSON where it parses: gracefulAttempts=1 is an int
    code, out, err = await cli(
        "--socket", sock, "VM", "destroy", f"vmID={vm_id}", "gracefulAttempts=1"
    )
    assert code == 0 and json.loads(out) is True, err

    code, out, err = await cli("--socket", sock, "VM", "getInfo", f"vmID={vm_id}")
    assert code == 1 and "error 1: Virtual machine does not exist" in err
    assert json.loads(err.split("\n", 1)[1])["vmId"] == vm_id

    # over HTTP too, and --help lists the running daemon's verbs with their params
    code, out, _ = await cli("--url", daemon.base, "--help")
    assert code == 0 and "from the running hvagent" in out
    assert "VM create vmID=... vmParams=..." in out and "Host getAllVmStats" in out


async def test_cli_help_falls_back_to_the_installed_table(tmp_path):
    code, out, _ = await cli("--socket", str(tmp_path / "nobody.sock"), "--help")
    assert code == 0 and "installed package's" in out and "VM destroy" in out
    code, _, err = await cli("--socket", str(tmp_path / "nobody.sock"), "Host", "ping2")
    assert code == 3 and "cannot reach hvagent" in err


async def test_cli_events_follows_status_changes(rpc, daemon, session):
    proc = await asyncio.create_subprocess_exec(
        CLIENT, "--socket", daemon.cfg.rpc.socket, "events", stdout=asyncio.subprocess.PIPE
    )
    try:
        vm_id = str(uuid.uuid4())
        params = {"vmId": vm_id, "vmName": f"ev-{vm_id[:8]}", "memSize": 64}
        for _ in range(50):
            if await daemon_subscribers(session, daemon):
                break
            await asyncio.sleep(0.1)
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        async with asyncio.timeout(30):
            while True:
                line = await proc.stdout.readline()
                assert line, "hvagent-client events ended"
                msg = json.loads(line)
                if msg["method"] == f"|virt|VM_status|{vm_id}":
                    break
        await rpc.call("VM.destroy", vmID=vm_id)
    finally:
        proc.terminate()
        await proc.wait()


async def daemon_subscribers(session, daemon) -> int:
    async with session.get(f"{daemon.base}/metrics") as r:
        text = await r.text()
    for line in text.splitlines():
        if line.startswith("hvagent_events_subscribers "):
            return int(float(line.split()[1]))
    return 0


async def test_rpc_logs_never_carry_param_values(rpc, caplog):
    secret = "s3cr3t-" + uuid.uuid4().hex
    caplog.set_level(logging.DEBUG)
    vm_id = str(uuid.uuid4())
    # fails validation: unknown params and a bad vmParams; the values must not be logged
    err = await rpc.error(
        "VM.create",
        vmID=vm_id,
        vmParams={"vmId": vm_id, "memSize": "x", "password": secret},
        password=secret,
    )
    assert err["code"] == -32602
    for bad in ({"memSize": secret}, {"memSize": 64, "vmName": 5, "password": secret}):
        err = await rpc.error("VM.create", vmID=vm_id, vmParams={"vmId": vm_id, **bad})
        assert err["code"] == -32602
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "VM.create" in text and secret not in text
