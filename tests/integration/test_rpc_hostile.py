"""Hostile JSON-RPC envelopes over HTTP on the test driver (issue 15, found items 3 to 6):
deep nesting, batches with a bad entry, huge or log-forging values, unknown method names,
and what they do to /metrics."""

from __future__ import annotations

import io
import json
import logging
import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_deep_nesting_is_a_parse_error(rpc):
    status, reply = await rpc.raw(b"[" * 100_000)
    assert status == 200 and reply["error"]["code"] == -32700 and reply["id"] is None
    status, reply = await rpc.raw(b'{"a":' * 100_000)
    assert status == 200 and reply["error"]["code"] == -32700
    assert (await rpc.call("Host.ping2")) is not None  # still answering


async def test_batch_entries_are_answered_one_by_one(rpc):
    batch = [{"jsonrpc": "2.0", "id": i, "method": "Host.ping2"} for i in range(999)]
    batch.insert(500, {"jsonrpc": "2.0", "id": "bad", "method": 5})
    batch.append({"jsonrpc": "2.0", "method": "Host.ping2"})  # a notification: no answer
    batch.append(7)
    status, reply = await rpc.raw(json.dumps(batch))
    assert status == 200 and len(reply) == 1001
    assert [r["id"] for r in reply if "result" in r] == list(range(999))
    errors = [r for r in reply if "error" in r]
    assert [(e["error"]["code"], e["id"]) for e in errors] == [(-32600, None), (-32600, None)]
    assert reply[500] == errors[0]


async def test_a_batch_of_notifications_gets_no_body(rpc):
    status, reply = await rpc.raw(json.dumps([{"jsonrpc": "2.0", "method": "Host.ping2"}] * 3))
    assert status == 204 and reply is None


async def test_huge_vm_id_is_not_echoed(rpc, caplog):
    caplog.set_level(logging.DEBUG)
    huge = "x" * (15 * 1024 * 1024)
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "VM.getStats", "params": [huge]})
    async with rpc.session.post(f"{rpc.base}/jsonrpc", data=io.BytesIO(body.encode())) as r:
        status, reply = r.status, await r.json()
    assert status == 200 and reply["error"]["code"] == -32602
    assert reply["error"]["data"]["param"] == "vmID"
    assert len(json.dumps(reply)) < 1000
    assert max(len(r.getMessage()) for r in caplog.records) < 2000


async def test_vm_id_cannot_forge_a_log_line(rpc, caplog):
    caplog.set_level(logging.DEBUG)
    forged = "x\n2026-12-02 10:00:00,000 ERROR agent.api forged line"
    err = await rpc.error("VM.getStats", vmID=forged)
    assert err["code"] == -32602 and "\n" not in err["data"]["reason"]
    for record in caplog.records:
        assert "\n" not in record.getMessage()
        assert "\n" not in str(getattr(record, "vm_id", ""))


async def test_unknown_methods_are_cut_and_count_as_one_label(rpc, session, daemon, caplog):
    caplog.set_level(logging.DEBUG)
    async with session.get(f"{daemon.base}/verbs") as r:
        verb_names = set(await r.json())
    name = "VM." + "z" * 100_000
    err = await rpc.error(name)
    assert err["code"] == -32601 and len(json.dumps(err)) < 1000
    assert err["data"]["method"].startswith("VM.zzz")
    assert max(len(r.getMessage()) for r in caplog.records) < 2000
    for _ in range(50):
        await rpc.error(f"Nope.{uuid.uuid4()}")
    await rpc.error("\ud800")
    _, reply = await rpc.raw('{"jsonrpc": "2.0", "id": 1, "method": "\\ud800"}')
    assert reply["error"]["code"] == -32601
    async with session.get(f"{daemon.base}/metrics") as r:
        assert r.status == 200
        text = await r.text()
    methods = set()
    for family in text_string_to_metric_families(text):
        if family.name == "hvagent_rpc_requests":
            methods |= {s.labels["method"] for s in family.samples}
    assert "unknown" in methods
    assert methods <= {"unknown", *verb_names}, methods
    assert "hvagent_metrics_exposition_failed" not in text


async def test_metrics_exposition_survives_a_broken_collector(rpc, session, daemon):
    from prometheus_client.registry import Collector

    from agent.api.app import exposition

    class Broken(Collector):
        def collect(self):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")

    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(Broken())
    body = exposition(registry, lambda: b"ok_metric 1\n")
    assert b'hvagent_metrics_exposition_failed{part="registry"} 1' in body
    assert body.endswith(b"ok_metric 1\n")
    families = {f.name for f in text_string_to_metric_families(body.decode())}
    assert families == {"hvagent_metrics_exposition_failed", "ok_metric"}
