"""The engine port's defences: TLS refusals and hostile frames.

Each refused or broken connection must execute nothing, leave the daemon up and leave other
connections untouched.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import ssl
import uuid
import warnings

import aiohttp
import pytest

from agent import config
from tests.client import RpcClient
from tests.integration.conftest import Daemon, libvirt_uuids
from tests.integration.test_stomp_testdriver import started, stomp_config
from tests.stomp_client import (
    RawStomp,
    StompPyClient,
    make_pki,
    reissue_host_cert,
    served_serial,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


def create_frame(vm_id: str) -> bytes:
    params = {"vmID": vm_id, "vmParams": {"vmId": vm_id, "vmName": "x", "memSize": 64}}
    body = json.dumps([{"jsonrpc": "2.0", "method": "VM.create", "params": params, "id": 1}])
    return b"SEND\ndestination:jms.topic.vdsm_requests\nreply-to:r\ncontent-length:%d\n\n%s\0" % (
        len(body),
        body.encode(),
    )


async def metric_lines(daemon, prefix: str) -> list[str]:
    async with aiohttp.ClientSession() as s, s.get(f"{daemon.base}/metrics") as r:
        text = await r.text()
    return [line for line in text.splitlines() if line.startswith(prefix)]


def client_ctx(pki, cert: str | None) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(pki / "certs" / "cacert.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / cert / "cert.pem"), str(pki / cert / "key.pem"))
    return ctx


async def refused(port: int, ctx: ssl.SSLContext, vm_id: str) -> str:
    """Try the handshake and, if the client side thinks it is done (TLS 1.3 verifies the
    client after), a VM.create; the server must cut the connection without a frame."""
    try:
        raw = await RawStomp.open(port, ctx)
    except (ssl.SSLError, ConnectionError) as exc:
        return f"handshake: {type(exc).__name__}"
    try:
        await raw.send(b"CONNECT\naccept-version:1.2\n\n\0" + create_frame(vm_id))
        frame = await raw.frame()
        assert frame is None, frame
        return "closed after handshake"
    except (ssl.SSLError, ConnectionError) as exc:
        return f"after handshake: {type(exc).__name__}"
    finally:
        await raw.close()


async def test_tls_refusals_execute_nothing(tmp_path, pki, virconn):
    d = await started(stomp_config(tmp_path, pki, tls=True))
    port = config.split_listen(d.cfg.stomp.listen)[1]
    bystander = await StompPyClient.open(port, pki)
    try:
        ids = [str(uuid.uuid4()) for _ in range(3)]
        await refused(port, client_ctx(pki, None), ids[0])
        await refused(port, client_ctx(pki, "other"), ids[1])
        old = client_ctx(pki, "client")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.minimum_version = old.maximum_version = ssl.TLSVersion.TLSv1_1
        old.set_ciphers("DEFAULT:@SECLEVEL=0")
        assert (await refused(port, old, ids[2])).startswith("handshake")
        # Plain STOMP on the TLS port: not even parsed.
        plain = await RawStomp.open(port)
        await plain.send(b"CONNECT\naccept-version:1.2\n\n\0" + create_frame(ids[0]))
        assert await plain.closed(15)
        await plain.close()

        failures = await metric_lines(d, "hvagent_tls_handshake_failures_total")
        counted = {line.split('"')[1]: float(line.split()[-1]) for line in failures}
        assert counted["no_client_cert"] == 1 and counted["bad_cert"] == 1, counted
        assert counted["protocol_version"] == 1 and counted["not_tls"] == 1, counted
        assert not set(ids) & libvirt_uuids(virconn)
        assert not await metric_lines(d, 'hvagent_rpc_requests_total{method="VM.create"')
        assert await bystander.call("Host.ping2") is True
        assert bystander.listener.disconnects == 0
    finally:
        await bystander.close()
        assert await d.stop() == 0


BAD_FRAMES = {
    "truncated": None,  # built in the test: half a frame, then end of stream
    "body longer than content-length": (
        b"SEND\ndestination:jms.topic.vdsm_requests\ncontent-length:5\n\nHost.ping2 tail\0"
    ),
    "missing NUL": b"SEND\ndestination:q\ncontent-length:5\n\nhelloSEND\ndestination:q\n\n\0",
    "10,000 headers": b"SEND\n" + b"h:v\n" * 10_000 + b"\n\0",
    "over the size limit": b"SEND\ndestination:q\ncontent-length:2000000\n\n",
    "over the size limit, no length": b"SEND\ndestination:q\n\n" + b"a" * 1_100_000,
    "binary garbage": bytes(range(256)) * 8,
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
async def test_bad_frames_get_error_or_close(case, tmp_path, pki, virconn):
    d = await started(stomp_config(tmp_path, pki, tls=False, max_frame_bytes=1024 * 1024))
    port = config.split_listen(d.cfg.stomp.listen)[1]
    bystander = await StompPyClient.open(port)
    raw = await RawStomp.open(port)
    vm_id = str(uuid.uuid4())
    try:
        if case == "truncated":
            await raw.send(create_frame(vm_id)[:-40])
            raw.writer.write_eof()
            assert await raw.frame() is None
        else:
            with contextlib.suppress(ConnectionError):  # closed while we were still writing
                await raw.send(BAD_FRAMES[case])
            frame = await raw.frame()
            if "size limit" in case and frame is None:
                pass  # reset while we were still sending: the ERROR can be lost (TCP)
            else:
                assert frame is not None and frame[0] == "ERROR", frame
            assert frame is None or frame[1]["message"] in (
                "body not terminated by NUL",
                "too many headers",
                "frame too large",
                "unknown command",
                "command too long",
            )
            assert await raw.closed()
        assert vm_id not in libvirt_uuids(virconn)
        assert not await metric_lines(d, 'hvagent_rpc_requests_total{method="VM.create"')
        assert await bystander.call("Host.ping2") is True
        assert bystander.listener.disconnects == 0 and not d.task.done()
    finally:
        await raw.close()
        await bystander.close()
        assert await d.stop() == 0


async def test_insecure_flag_allows_plain_off_loopback(tmp_path, pki):
    """The explicit opt-out works (bound to 0.0.0.0, reached on loopback)."""
    cfg = stomp_config(tmp_path, pki, tls=False, insecure=True)
    port = config.split_listen(cfg.stomp.listen)[1]
    stomp = config.StompConfig(listen=f"0.0.0.0:{port}", tls=False, insecure=True)
    cfg = dataclasses.replace(cfg, stomp=stomp)
    d = await started(cfg)
    try:
        client = await StompPyClient.open(port)
        assert await client.call("Host.ping2") is True
        await client.close()
    finally:
        assert await d.stop() == 0


async def test_sighup_reloads_certificates_for_new_connections_only(tmp_path, pki, virconn):
    own = tmp_path / "pki"
    shutil.copytree(pki, own)
    d = await started(stomp_config(tmp_path, own, tls=True))
    port = config.split_listen(d.cfg.stomp.listen)[1]
    established = await StompPyClient.open(port, own)
    try:
        before = await asyncio.to_thread(served_serial, port, own)
        await asyncio.to_thread(reissue_host_cert, own)
        os.kill(os.getpid(), signal.SIGHUP)
        async with asyncio.timeout(30):
            while (after := await asyncio.to_thread(served_serial, port, own)) == before:
                await asyncio.sleep(0.1)
        assert after != before
        assert await established.call("Host.ping2") is True
        assert established.listener.disconnects == 0
        fresh = await StompPyClient.open(port, own)
        assert await fresh.call("Host.ping2") is True
        await fresh.close()
    finally:
        await established.close()
        assert await d.stop() == 0


async def test_slow_consumer_is_closed_and_counted_others_untouched(tmp_path, pki, virconn):
    cfg = stomp_config(tmp_path, pki, tls=False, max_pending_bytes=64 * 1024)
    d = await started(cfg)
    port = config.split_listen(cfg.stomp.listen)[1]
    slow = await RawStomp.open(port)  # subscribes, then never reads
    sender = await StompPyClient.open(port)
    try:
        await slow.send(b"SUBSCRIBE\ndestination:bulk\nid:b\nreceipt:ok\n\n\0")
        assert await slow.frame() == ("RECEIPT", {"receipt-id": "ok"}, b"")
        slow.writer.transport.pause_reading()
        chunk = b"x" * (1024 * 1024)
        frame = b"SEND\ndestination:bulk\ncontent-length:%d\n\n%s\0" % (len(chunk), chunk)
        raw_sender = await RawStomp.open(port)
        async with asyncio.timeout(60):
            while not await metric_lines(d, "hvagent_stomp_slow_consumer_closes_total 1.0"):
                await raw_sender.send(frame)  # the kernel buffers fill, then hvagent's
        await raw_sender.close()
        slow.writer.transport.resume_reading()
        assert await slow.closed(30)
        assert await sender.call("Host.ping2") is True
        assert sender.listener.disconnects == 0 and not d.task.done()
    finally:
        await slow.close()
        await sender.close()
        assert await d.stop() == 0


async def test_stop_drops_connections_still_in_their_handshake(tmp_path, pki, virconn):
    d = await started(stomp_config(tmp_path, pki, tls=True))
    port = config.split_listen(d.cfg.stomp.listen)[1]
    silent = await RawStomp.open(port)  # TCP only: never says ClientHello
    established = await StompPyClient.open(port, pki)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        assert await d.stop() == 0
        assert loop.time() - start < d.cfg.tls.handshake_timeout_s / 2
        assert await silent.closed(5)
    finally:
        await silent.close()
        await established.close()


async def test_missing_certificates_keep_the_port_closed_until_sighup(tmp_path, pki, virconn):
    """A host installed before the engine deployed its certificates: hvagent runs (HTTP,
    the Unix socket, VMs), the engine port stays closed; the files plus SIGHUP open it."""
    own = tmp_path / "pki-later"
    d = await started_http(stomp_config(tmp_path, own, tls=True))
    port = config.split_listen(d.cfg.stomp.listen)[1]
    try:
        with pytest.raises(OSError):
            await RawStomp.open(port)
        shutil.copytree(pki, own)
        os.kill(os.getpid(), signal.SIGHUP)
        async with asyncio.timeout(30):
            while True:
                try:
                    client = await StompPyClient.open(port, own)
                    break
                except Exception:  # stomp.py's ConnectFailedException until it listens
                    await asyncio.sleep(0.2)
        assert await client.call("Host.ping2") is True
        await client.close()
    finally:
        assert await d.stop() == 0


async def started_http(cfg):
    d = Daemon(cfg)
    async with aiohttp.ClientSession() as s:
        await RpcClient(d.base, s).wait_ready(30)
    return d
