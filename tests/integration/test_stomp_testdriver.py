"""The engine transport on libvirt's test driver: stomp.py (a third-party STOMP client) over
plain TCP and mutual TLS, the frame orders the engine's Java client produces, heart-beats."""

from __future__ import annotations

import asyncio
import dataclasses
import io
import json
import logging
import uuid

import aiohttp
import pytest
import pytest_asyncio

from agent import config, logs
from tests.client import free_port
from tests.integration.conftest import SHARED_URI, Daemon, libvirt_uuids, make_config
from tests.stomp_client import RawStomp, StompPyClient, make_pki

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def stomp_config(tmp_path, pki, *, tls: bool, **stomp) -> config.Config:
    cfg = make_config(tmp_path, SHARED_URI)
    return dataclasses.replace(
        cfg,
        stomp=config.StompConfig(listen=f"127.0.0.1:{free_port()}", tls=tls, **stomp),
        tls=config.TlsConfig(
            ca=str(pki / "certs" / "cacert.pem"),
            cert=str(pki / "certs" / "vdsmcert.pem"),
            key=str(pki / "keys" / "vdsmkey.pem"),
        ),
    )


async def started(cfg: config.Config) -> Daemon:
    d = Daemon(cfg)
    port = config.split_listen(cfg.stomp.listen)[1]
    async with asyncio.timeout(30):
        while True:  # the listener is up, and startup recovery is done
            try:
                _, w = await asyncio.open_connection("127.0.0.1", port)
                w.close()
                break
            except OSError:
                assert not d.task.done(), d.task.result()
                await asyncio.sleep(0.05)
    return d


@pytest_asyncio.fixture(loop_scope="session", params=["plain", "tls"])
async def engine(request, tmp_path, pki, virconn):
    cfg = stomp_config(tmp_path, pki, tls=request.param == "tls")
    d = await started(cfg)
    d.port = config.split_listen(cfg.stomp.listen)[1]
    d.pki = pki if request.param == "tls" else None
    yield d
    assert await d.stop() == 0


def vm_params(vm_id: str) -> dict:
    return {"vmId": vm_id, "vmName": f"stomp-{vm_id[:8]}", "memSize": 64, "smp": 1}


async def test_engine_verbs_and_events(engine, virconn):
    client = await StompPyClient.open(engine.port, engine.pki)
    try:
        assert await client.call("Host.ping2") is True
        vm_id = str(uuid.uuid4())
        created = await client.call("VM.create", vmID=vm_id, vmParams=vm_params(vm_id))
        assert created["vmId"] == vm_id and created["status"] == "WaitForLaunch"
        up = await client.wait_status(vm_id, "Up")
        assert up["vmName"] == f"stomp-{vm_id[:8]}"
        stats = await client.call("VM.getStats", vmID=vm_id)
        assert stats[0]["vmId"] == vm_id and stats[0]["status"] == "Up"
        assert vm_id in libvirt_uuids(virconn)
        assert await client.call("VM.destroy", vmID=vm_id) is True
        down = await client.wait_status(vm_id, "Down")
        assert down["exitReason"] == 6
        err = (await client.request("VM.getStats", vmID=vm_id))["error"]
        assert err["code"] == 1  # the same error objects as over HTTP
        bad = (await client.request("VM.create", vmID=vm_id, vmParams={"vmId": "x\x00"}))["error"]
        assert bad["code"] == -32602 and "param" in bad["data"]
        assert vm_id not in libvirt_uuids(virconn)
        assert client.listener.errors.empty() and client.listener.disconnects == 0
        metrics = await scrape(engine)
        assert metrics["hvagent_stomp_connections"] == 1
        assert metrics["hvagent_stomp_subscriptions"] == 2
        assert metrics['hvagent_stomp_frames_total{command="SEND",direction="in"}'] == 6
        assert (
            metrics['hvagent_stomp_frames_total{command="MESSAGE",direction="out"}'] >= 8
        )  # 6 replies + Up, Down
        assert metrics['hvagent_rpc_requests_total{method="VM.create",outcome="ok"}'] == 1
    finally:
        await client.close()
    async with asyncio.timeout(10):
        while (await scrape(engine))["hvagent_stomp_connections"] != 0:
            await asyncio.sleep(0.05)
    assert (await scrape(engine))["hvagent_stomp_subscriptions"] == 0


async def scrape(daemon) -> dict[str, float]:
    async with aiohttp.ClientSession() as s, s.get(f"{daemon.base}/metrics") as r:
        text = await r.text()
    return {
        line.rpartition(" ")[0]: float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith("hvagent_")
    }


async def test_peer_is_in_every_stomp_verb_log_line(engine):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(logs._ContextFilter())
    handler.setFormatter(logging.Formatter("%(name)s [vm=%(vm_id)s%(peer)s] %(message)s"))
    api = logging.getLogger("agent.api")
    api.addHandler(handler)
    level = api.level
    api.setLevel(logging.INFO)
    client = await StompPyClient.open(engine.port, engine.pki)
    try:
        await client.call("Host.ping2")
        local = client.conn.transport.socket.getsockname()
    finally:
        api.removeHandler(handler)
        api.setLevel(level)
        await client.close()
    lines = [line for line in out.getvalue().splitlines() if "Host.ping2" in line]
    assert lines and all(f"peer=127.0.0.1:{local[1]}]" in line for line in lines), lines


async def test_java_client_frame_order_receipts_forwarding(tmp_path, pki, virconn):
    """SUBSCRIBE before CONNECT, a bare-object request without content-type, SEND to another
    destination forwarded, receipts, DISCONNECT."""
    d = await started(stomp_config(tmp_path, pki, tls=False))
    port = config.split_listen(d.cfg.stomp.listen)[1]
    raw = await RawStomp.open(port)
    other = await RawStomp.open(port)
    try:
        await raw.send(
            b"SUBSCRIBE\ndestination:jms.topic.vdsm_responses\nack:auto\nid:s1\n\n\0"
            b"SUBSCRIBE\ndestination:jms.queue.events\nack:auto\nid:s2\n\n\0"
            b"SEND\ndestination:jms.topic.vdsm_requests\nreply-to:jms.topic.vdsm_responses\n\n"
            b'{"jsonrpc":"2.0","method":"Host.ping2","params":{},"id":"p1"}\0'
        )
        command, headers, body = await raw.frame()
        assert command == "MESSAGE" and headers["subscription"] == "s1"
        assert headers["destination"] == "jms.topic.vdsm_responses"
        assert int(headers["content-length"]) == len(body)
        assert json.loads(body) == {"jsonrpc": "2.0", "result": True, "id": "p1"}
        # The EOL nudge: one "\n" once the burst is over (no heart-beats before CONNECT).
        assert await raw.reader.readexactly(1) == b"\n"

        await raw.send(b"CONNECT\naccept-version:1.2\nheart-beat:0,15000\nhost:null\n\n\0")
        assert await raw.frame() == ("CONNECTED", {"version": "1.2", "heart-beat": "15000,0"}, b"")

        # Another connection subscribes to a parent destination; a SEND is forwarded there.
        await other.send(b"STOMP\naccept-version:1.1,1.2\n\n\0")
        assert (await other.frame())[0] == "CONNECTED"
        await other.send(b"SUBSCRIBE\ndestination:app\nid:x\nreceipt:r1\n\n\0")
        assert await other.frame() == ("RECEIPT", {"receipt-id": "r1"}, b"")
        await raw.send(b"SEND\ndestination:app.notes\ncontent-length:2\n\nhi\0")
        command, headers, body = await other.frame()
        assert (command, headers["destination"], headers["subscription"], body) == (
            "MESSAGE", "app.notes", "x", b"hi",
        )  # fmt: skip

        # ACK is accepted and ignored; DISCONNECT gets its RECEIPT, then the close.
        await raw.send(b"ACK\nid:1\n\n\0DISCONNECT\nreceipt:bye\n\n\0")
        assert await raw.frame() == ("RECEIPT", {"receipt-id": "bye"}, b"")
        assert await raw.frame() is None
        await other.send(b"CONNECT\naccept-version:1.0\n\n\0")  # no 1.2: refused
        assert (await other.frame())[1]["message"] == "Version unsupported"
    finally:
        await raw.close()
        await other.close()
        assert await d.stop() == 0


async def test_idle_client_gets_heart_beats_and_its_next_answer_at_once(tmp_path, pki, virconn):
    """stomp.py drops a connection silent for 1.5x its heart-beat wish (24 s -> 36 s), like
    vdsm.client after 30 s: 40 s idle must leave it connected and answered at once."""
    d = await started(stomp_config(tmp_path, pki, tls=False))
    client = await StompPyClient.open(config.split_listen(d.cfg.stomp.listen)[1])
    try:
        assert await client.call("Host.ping2") is True
        await asyncio.sleep(40)  # the point of the test is the idle time itself
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await client.call("Host.ping2", timeout=5) is True
        assert loop.time() - start < 2
        assert client.listener.heartbeat_timeouts == 0 and client.listener.disconnects == 0
    finally:
        await client.close()
        assert await d.stop() == 0


async def test_heart_beat_clamped_to_one_second_and_written(tmp_path, pki, virconn):
    d = await started(stomp_config(tmp_path, pki, tls=False, nudge_ms=0))
    raw = await RawStomp.open(config.split_listen(d.cfg.stomp.listen)[1])
    try:
        await raw.send(b"CONNECT\naccept-version:1.2\nheart-beat:5000,10\n\n\0")
        assert await raw.frame() == ("CONNECTED", {"version": "1.2", "heart-beat": "1000,0"}, b"")
        loop = asyncio.get_running_loop()
        start = loop.time()
        async with asyncio.timeout(10):
            while raw.eols < 3:  # one "\n" a second, and nothing else
                assert await raw.reader.readexactly(1) == b"\n"
                raw.eols += 1
        assert 1.5 < loop.time() - start < 8
    finally:
        await raw.close()
        assert await d.stop() == 0
