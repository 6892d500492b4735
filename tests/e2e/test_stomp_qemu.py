"""The engine's path on a real hypervisor: stomp.py over mutual TLS drives a QEMU guest."""

from __future__ import annotations

import aiohttp
import pytest

from tests.client import RpcClient, free_port
from tests.e2e.conftest import Agent, _cleanup, guest_params
from tests.stomp_client import StompPyClient, make_pki

pytestmark = [pytest.mark.e2e, pytest.mark.asyncio(loop_scope="session")]


async def test_stomp_tls_create_up_stats_destroy(tmp_path, guest, virconn):
    pki = make_pki(tmp_path / "pki")
    port = free_port()
    agent = Agent(
        tmp_path,
        (
            f"stomp.listen=127.0.0.1:{port}",
            f"tls.ca={pki}/certs/cacert.pem",
            f"tls.cert={pki}/certs/vdsmcert.pem",
            f"tls.key={pki}/keys/vdsmkey.pem",
        ),
    )
    agent.start()
    try:
        async with aiohttp.ClientSession() as session:
            await RpcClient(agent.base, session).wait_ready(180)
        client = await StompPyClient.open(port, pki)
        try:
            assert await client.call("Host.ping2") is True
            vm_id, params = guest_params(guest)
            created = await client.call("VM.create", vmID=vm_id, vmParams=params)
            assert created["status"] == "WaitForLaunch"
            up = await client.wait_status(vm_id, "Up", 120)
            assert up["vmType"] == "qemu"
            await agent.wait_console(vm_id, "HVAGENT-GUEST-READY")
            stats = (await client.call("VM.getStats", vmID=vm_id))[0]
            assert stats["status"] == "Up" and stats["memSize"] == 256
            assert virconn.lookupByUUIDString(vm_id).isActive() == 1
            assert await client.call("VM.destroy", vmID=vm_id) is True
            down = await client.wait_status(vm_id, "Down", 60)
            assert down["exitReason"] == 6
            assert vm_id not in {d.UUIDString() for d in virconn.listAllDomains(0)}
            assert client.listener.disconnects == 0
        finally:
            await client.close()
        log = agent.log.read_text()
        assert "STOMP connection from 127.0.0.1:" in log and "CN=engine" in log
        assert "peer=127.0.0.1:" in log and "VM.create" in log
    finally:
        code = agent.stop()
        _cleanup()
    assert code == 0, agent.log.read_text()[-3000:]
