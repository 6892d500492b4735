"""hvagent-client --stomp: the engine's path from a shell, over mutual TLS and plain."""

from __future__ import annotations

import json
import uuid

import pytest

from agent import config
from tests.integration.test_cli_socket import cli
from tests.integration.test_stomp_testdriver import started, stomp_config
from tests.stomp_client import make_pki

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    return make_pki(tmp_path_factory.mktemp("pki"))


async def test_cli_over_stomp_tls(tmp_path, pki, virconn):
    d = await started(stomp_config(tmp_path, pki, tls=True))
    address = d.cfg.stomp.listen
    tls = ["--ca", str(pki / "certs" / "cacert.pem"), "--cert", str(pki / "client" / "cert.pem")]
    tls += ["--key", str(pki / "client" / "key.pem")]
    try:
        code, out, err = await cli("--stomp", "--address", address, *tls, "Host", "ping2")
        assert (code, json.loads(out)) == (0, True), err
        vm_id = str(uuid.uuid4())
        code, _, err = await cli(
            "--stomp", "--address", address, *tls, "VM", "getStats", f"vmID={vm_id}"
        )
        assert code == 1 and err.startswith("error 1:") and vm_id in err
        # Without a client certificate hvagent drops the connection after the handshake.
        code, _, err = await cli("--stomp", "--address", address, "--timeout", "20",
                                 "--ca", tls[1], "Host", "ping2")  # fmt: skip
        assert code == 3 and f"cannot reach hvagent at {address}" in err, err
    finally:
        assert await d.stop() == 0


async def test_cli_over_plain_stomp(tmp_path, pki, virconn):
    d = await started(stomp_config(tmp_path, pki, tls=False))
    try:
        port = config.split_listen(d.cfg.stomp.listen)[1]
        code, out, err = await cli("--stomp", "--address", f"127.0.0.1:{port}", "Host", "ping2")
        assert (code, json.loads(out)) == (0, True), err
    finally:
        assert await d.stop() == 0
