"""The dispatch wrapper: parameter binding, recovery gate, internal errors, logging."""

import asyncio
import inspect
import json
import logging
from types import SimpleNamespace

import pytest

from agent import errors
from agent.api import rpc


def services(recovered=True):
    event = asyncio.Event()
    if recovered:
        event.set()
    return SimpleNamespace(registry=SimpleNamespace(recovered=event))


async def boom(services, vmID):
    raise RuntimeError("secret internals /etc/shadow")


async def echo(services, vmID, count=1):
    return {"vmID": vmID, "count": count}


async def missing(services):
    raise errors.MissingParameter("memSize is required", param="memSize")


def table():
    return {
        "VM.boom": rpc.expose("VM.boom", boom, needs_recovery=False),
        "VM.echo": rpc.expose("VM.echo", echo, needs_recovery=True),
        "VM.missing": rpc.expose("VM.missing", missing, needs_recovery=False),
    }


async def call(method, params, svc=None):
    body = json.dumps({"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
    return json.loads(await rpc.dispatch(body, table(), svc or services()))


async def test_unexpected_exception_is_32603_with_logged_error_id(caplog):
    caplog.set_level(logging.INFO)
    answer = await call("VM.boom", {"vmID": "x"})
    error = answer["error"]
    assert error["code"] == -32603 and error["message"] == "Internal error"
    assert set(error["data"]) == {"error_id"}
    assert "secret internals" not in json.dumps(answer)
    assert error["data"]["error_id"] in caplog.text
    assert "Traceback" in caplog.text  # in the log, never on the wire


async def test_result_and_defaults():
    assert (await call("VM.echo", {"vmID": "a"}))["result"] == {"vmID": "a", "count": 1}
    assert (await call("VM.echo", ["a", 3]))["result"] == {"vmID": "a", "count": 3}


@pytest.mark.parametrize(
    ("params", "param"),
    [({}, "vmID"), ({"vmID": "a", "bogus": 1}, "bogus"), (["a", 1, 2], None)],
)
async def test_signature_mismatch_is_32602_naming_the_param(params, param):
    error = (await call("VM.echo", params))["error"]
    assert error["code"] == -32602
    assert error["data"].get("param") == param


async def test_agent_errors_keep_code_and_detail():
    error = (await call("VM.missing", {}))["error"]
    assert error == {
        "code": 11,
        "message": "Missing required parameter",
        "data": {"reason": "memSize is required", "param": "memSize"},
    }


async def test_vm_verbs_answer_99_until_recovered():
    error = (await call("VM.echo", {"vmID": "a"}, services(recovered=False)))["error"]
    assert error["code"] == 99
    # verbs that do not need recovery answer at once
    assert (await call("VM.missing", {}, services(recovered=False)))["error"]["code"] == 11


async def test_one_log_line_per_verb(caplog):
    caplog.set_level(logging.INFO, logger="agent.api")
    await call("VM.echo", {"vmID": "a"})
    lines = [r.getMessage() for r in caplog.records if r.name == "agent.api"]
    assert len(lines) == 1 and lines[0].startswith("VM.echo vm=a ok in ")


@pytest.mark.parametrize(
    "request_",
    [
        [],
        {"jsonrpc": "2.0"},
        {"jsonrpc": "2.0", "method": "x", "id": True},
        {"jsonrpc": "2.0", "method": "x", "extra": 1},
        [{"jsonrpc": "2.0", "method": "x"}, 3],
    ],
)
def test_validate_request_refuses(request_):
    with pytest.raises(ValueError):
        rpc.validate_request(request_)


async def test_body_is_read_as_bytes_and_bad_utf8_is_a_parse_error():
    ok = await rpc.dispatch(
        b'{"jsonrpc": "2.0", "id": 1, "method": "VM.missing"}', table(), services()
    )
    assert json.loads(ok)["error"]["code"] == 11
    bad = await rpc.dispatch(b'{"jsonrpc": "2.0", "id": 1, "method": "\xe9"}', table(), services())
    assert json.loads(bad)["error"]["code"] == -32700 and json.loads(bad)["id"] is None


async def three(services, a, b=2, c=3):
    return [a, b, c]


@pytest.mark.parametrize(
    "args",
    [(), ("x",), ("x", 1), ("x", 1, 2), ("x", 1, 2, 3)],
)
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"a": 1}, {"b": 1}, {"c": 1}, {"a": 1, "c": 1}, {"b": 1, "c": 1}, {"d": 1},
     {"services": 1}, {"a": 1, "b": 1, "c": 1}],
)  # fmt: skip
def test_fast_argument_check_agrees_with_signature_bind(args, kwargs):
    verb = rpc.expose("X.three", three, needs_recovery=False)
    try:
        inspect.signature(three).bind(None, *args, **kwargs)
        binds = True
    except TypeError:
        binds = False
    assert verb._fits(args, kwargs) is binds


REQUESTS = [
    {"jsonrpc": "2.0", "id": 1, "method": "VM.echo", "params": {"vmID": "a"}},
    {"jsonrpc": "2.0", "id": "s", "method": "VM.echo", "params": ["a", 2]},
    {"jsonrpc": "2.0", "id": 2, "method": "VM.echo", "params": {"vmID": "a", "bogus": 1}},
    {"jsonrpc": "2.0", "id": 3, "method": "VM.echo", "params": ["a", 1, 2]},
    {"jsonrpc": "2.0", "id": None, "method": "VM.missing"},
    {"jsonrpc": "2.0", "id": 4, "method": "VM.boom", "params": {"vmID": "b"}},
    {"jsonrpc": "2.0", "id": 5, "method": "VM.nosuch"},
    {"jsonrpc": "2.0", "id": 6, "method": "VM.echo", "params": {"vmID": "a", "services": 1}},
]


@pytest.mark.parametrize("request_", REQUESTS)
async def test_single_answer_is_the_batch_answer(request_):
    """A single request takes the fast path, a batch goes through jsonrpcserver: same answer."""
    single = json.loads(await rpc.dispatch(json.dumps(request_), table(), services()))
    (batched,) = json.loads(await rpc.dispatch(json.dumps([request_]), table(), services()))
    if request_["method"] == "VM.boom":  # a fresh error_id each time
        single["error"]["data"] = batched["error"]["data"] = None
    assert single == batched
    assert single["id"] == request_["id"]


async def test_notification_runs_the_verb_and_gets_no_answer(caplog):
    caplog.set_level(logging.INFO, logger="agent.api")
    body = json.dumps({"jsonrpc": "2.0", "method": "VM.echo", "params": {"vmID": "n"}})
    assert await rpc.dispatch(body, table(), services()) == ""
    assert [r.getMessage()[:13] for r in caplog.records] == ["VM.echo vm=n "]


async def test_each_call_logs_its_request_id(caplog):
    """The verb's log line carries the JSON-RPC id as its request id (it was always `-`)."""
    from agent import logs

    caplog.set_level(logging.INFO)
    caplog.handler.addFilter(logs._ContextFilter())  # stamps records as the daemon's handler
    rpc_id = "3f2a9c1e-77aa-4d0e-9d5b-0c1d2e3f4a5b"
    body = json.dumps(
        {"jsonrpc": "2.0", "id": rpc_id, "method": "VM.echo", "params": {"vmID": "v"}}
    )
    await rpc.dispatch(body, table(), services())
    records = [r for r in caplog.records if r.name == "agent.api"]
    assert records and {r.request_id for r in records} == {rpc_id}
    assert {r.vm_id for r in records} == {"v"}


@pytest.mark.parametrize("rpc_id", ["x\n2026-12-01 ERROR forged", "a" * 100, None, True])
async def test_unloggable_ids_get_a_fresh_request_id(rpc_id):
    rid = rpc.request_id(rpc_id)
    assert rid.startswith("~") and len(rid) == 9
    assert rpc.request_id(rpc_id) != rid  # fresh each call


def test_plain_ids_are_kept():
    assert rpc.request_id(17) == "17"
    assert rpc.request_id("engine-42") == "engine-42"


async def test_a_raw_json_result_is_spliced_alone_and_in_a_batch():
    async def raw(services):
        return rpc.RawJSON('[{"vmId": "a\\u0000b", "n": 1}]')

    methods = table() | {"Host.raw": rpc.expose("Host.raw", raw, needs_recovery=False)}
    request_ = {"jsonrpc": "2.0", "id": 'x"y', "method": "Host.raw"}
    single = json.loads(await rpc.dispatch(json.dumps(request_), methods, services()))
    assert single == {"jsonrpc": "2.0", "result": [{"vmId": "a\0b", "n": 1}], "id": 'x"y'}
    echo_ = {"jsonrpc": "2.0", "id": 2, "method": "VM.echo", "params": {"vmID": "v"}}
    batch = [request_, {"jsonrpc": "2.0", "method": "Host.raw"}, echo_]
    answers = json.loads(await rpc.dispatch(json.dumps(batch), methods, services()))
    assert answers == [single, {"jsonrpc": "2.0", "result": {"vmID": "v", "count": 1}, "id": 2}]
