"""JSON-RPC plumbing around jsonrpcserver: verb wrapping, request validation, errors.

`expose(name, fn)` turns a plain `async def verb(services, vmID, ...)` into an `Exposed` verb.
Its `run` checks the call against the verb's own signature (a wrong or missing parameter is
answered -32602 with the parameter named in `error.data.param`), applies the recovery gate,
turns `AgentError`s into their stable code and anything unexpected into -32603 with an
`error_id` that is also in the log (never a traceback or exception text on the wire), and logs
one line per call: method, VM, outcome, duration.

`dispatch(body, methods, services)` is the request entry point. A single well-formed request
(nearly every request) is answered here without jsonrpcserver: the same structural checks as
its jsonschema validator, written out; the verb's `run`; the response object built and
serialized directly. A batch is answered entry by entry, concurrently, the same way
(JSON-RPC 2.0: an invalid entry gets its own -32600, the others their answers). What is
left (parse errors, one invalid request, an empty batch) goes through jsonrpcserver's
`async_dispatch`. See bench/rpc_ping.py and README.md "Benchmarks".

Hostile input (issue 15): JSON nested too deep to parse is a parse error (-32700); values
from the request reach logs and error texts only through `agent.wirevalues` (cut, escaped).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from jsonrpcserver import async_dispatch

from agent import errors, wirevalues
from agent.api.context import Services
from agent.logs import request_id_var, vm_id_var

log = logging.getLogger("agent.api")

Verb = Callable[..., Awaitable[Any]]
_NAMED = re.compile(r"'(\w+)'")
_REQUEST_KEYS = frozenset({"jsonrpc", "method", "params", "id"})
_LOGGABLE_ID = re.compile(r"[A-Za-z0-9._:-]{1,40}")


def request_id(rpc_id: Any) -> str:
    """The id log lines carry for one call: the JSON-RPC id when it is short and plain
    (engines send UUIDs), else a fresh one; a caller's id never forges a log line."""
    text = str(rpc_id) if isinstance(rpc_id, str | int) and not isinstance(rpc_id, bool) else ""
    if _LOGGABLE_ID.fullmatch(text):
        return text
    return "~" + uuid.uuid4().hex[:8]


class RawJSON(str):
    """A verb's result already serialized as JSON text: the dispatcher splices it into the
    response as is (Host.getAllVmStats)."""


def _encode(answer: dict[str, Any]) -> str:
    result = answer.get("result")
    if isinstance(result, RawJSON):
        return f'{{"jsonrpc": "2.0", "result": {result}, "id": {json.dumps(answer["id"])}}}'
    return json.dumps(answer)


class Exposed:
    """One verb as dispatch calls it: `await verb.run(services, args, kwargs)` answers
    `(True, result)` or `(False, error object)`."""

    def __init__(self, name: str, fn: Verb, *, needs_recovery: bool) -> None:
        self.name = name
        self._fn = fn
        self._needs_recovery = needs_recovery
        self._signature = inspect.signature(fn)
        params = list(self._signature.parameters.values())[1:]  # after `services`
        # Verbs whose parameters are all plain (positional-or-keyword) are checked against
        # their names below; anything else, and every call that does not fit, goes through
        # Signature.bind, whose TypeError names the parameter at fault.
        self._plain = all(p.kind is p.POSITIONAL_OR_KEYWORD for p in params)
        names = [p.name for p in params]
        required = sum(p.default is p.empty for p in params)  # plain: required come first
        # With `i` positional arguments: the names a keyword may still use, and the required
        # names the keywords must cover.
        self._allowed = [frozenset(names[i:]) for i in range(len(names) + 1)]
        self._missing = [frozenset(names[i:required]) for i in range(len(names) + 1)]

    def _fits(self, args: tuple[Any, ...] | list[Any], kwargs: dict[str, Any]) -> bool:
        """True if `fn(services, *args, **kwargs)` binds: no extra, unknown, duplicate or
        missing parameter."""
        given = len(args)
        if not self._plain or given >= len(self._allowed):
            return False
        keys = kwargs.keys()
        return keys <= self._allowed[given] and keys >= self._missing[given]

    async def run(
        self,
        services: Services,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any],
        rpc_id: Any = None,
    ) -> tuple[bool, Any]:
        start = time.monotonic()
        name = self.name
        vm = kwargs.get("vmID") if kwargs else None
        if not isinstance(vm, str) or not _LOGGABLE_ID.fullmatch(vm):
            vm = None
        vm_id_var.set(vm or "-")
        request_id_var.set(request_id(rpc_id))
        try:
            if not self._fits(args, kwargs):
                try:
                    self._signature.bind(services, *args, **kwargs)
                except TypeError as exc:
                    text = wirevalues.cut(str(exc))
                    match = _NAMED.search(text)
                    raise errors.InvalidParams(
                        text, param=match.group(1) if match else None
                    ) from None
            if self._needs_recovery and not services.registry.recovered.is_set():
                raise errors.Recovering()
            result = await self._fn(services, *args, **kwargs)
        except errors.AgentError as exc:
            _log_call(
                services,
                name,
                vm,
                start,
                f"error {exc.code} ({_loggable(exc)})",
                logging.INFO if exc.expected else logging.ERROR,
                outcome=f"error_{exc.code}",
            )
            return False, exc.to_wire()
        except Exception as exc:
            internal = errors.internal_error(log, f"{name} failed unexpectedly", exc)
            _log_call(
                services, name, vm, start, f"internal error {internal.data['error_id']}",
                logging.ERROR, outcome="internal_error",
            )  # fmt: skip
            return False, internal.to_wire()
        _log_call(services, name, vm, start, "ok", logging.INFO, outcome="ok")
        return True, True if result is None else result


def expose(name: str, fn: Verb, *, needs_recovery: bool) -> Exposed:
    return Exposed(name, fn, needs_recovery=needs_recovery)


def _loggable(exc: errors.AgentError) -> str:
    """The error's reason, except for bad input: validation messages may quote the value
    (a password among them), so those log only the parameter's name."""
    if isinstance(exc, errors.InvalidParams | errors.MissingParameter):
        return f"param={wirevalues.loggable(exc.data.get('param', '?'))}"
    return wirevalues.loggable(exc.reason, limit=1000)


def _log_call(
    services: Services,
    name: str,
    vm: str | None,
    start: float,
    text: str,
    level: int,
    *,
    outcome: str,
) -> None:
    """One line per verb: method, VM, outcome, duration. Never parameter values."""
    elapsed = time.monotonic() - start
    if log.isEnabledFor(level):
        log.log(level, "%s vm=%s %s in %.1f ms", name, vm or "-", text, elapsed * 1000)
    metrics = getattr(services, "metrics", None)  # unit tests hand in bare namespaces
    if metrics is not None:
        metrics.rpc_finished(name, outcome, elapsed)


def _is_request(item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    id_ = item.get("id")
    return (
        item.get("jsonrpc") == "2.0"
        and isinstance(item.get("method"), str)
        and isinstance(item.get("params", []), list | dict)
        and isinstance(id_, str | int | type(None))
        and not isinstance(id_, bool)
        and item.keys() <= _REQUEST_KEYS
    )


def validate_request(request: Any) -> Any:
    """Raise for anything that is not a JSON-RPC 2.0 request or a non-empty batch of them."""
    items = request if isinstance(request, list) else [request]
    if not items:
        raise ValueError("empty batch")
    for item in items:
        if not _is_request(item):
            raise ValueError("not a JSON-RPC 2.0 request")
    return request


def _loads(body: str | bytes) -> Any:
    """JSON text as sent over HTTP: UTF-8 (RFC 8259), decoded here, which is cheaper than
    json.loads guessing the encoding of bytes. Raises ValueError for either failure, and for
    nesting deeper than the parser's recursion limit."""
    try:
        return json.loads(body.decode() if isinstance(body, bytes) else body)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


_INVALID = {"code": -32600, "message": "Invalid request", "data": "not a JSON-RPC 2.0 request"}


async def _answer(item: Any, methods: dict[str, Any], services: Services) -> dict[str, Any] | None:
    """One batch entry's response object; None for a notification."""
    if not _is_request(item):
        return {"jsonrpc": "2.0", "error": _INVALID, "id": None}
    verb = methods.get(item["method"])
    if not isinstance(verb, Exposed):
        method = item["method"]
        ok, value = (
            False,
            errors.MethodNotFound(
                f"method {wirevalues.echo(method)} does not exist", method=wirevalues.cut(method)
            ).to_wire(),
        )
    else:
        params = item.get("params")
        rpc_id = item.get("id")
        if params is None:
            ok, value = await verb.run(services, (), {}, rpc_id)
        elif isinstance(params, list):
            ok, value = await verb.run(services, params, {}, rpc_id)
        else:
            ok, value = await verb.run(services, (), params, rpc_id)
    if "id" not in item:
        return None
    return {"jsonrpc": "2.0", "result" if ok else "error": value, "id": item["id"]}


async def dispatch(body: str | bytes, methods: dict[str, Any], services: Services) -> str:
    """Answer one HTTP body: a JSON-RPC response, a batch of them, or "" (notifications)."""
    try:
        request = _loads(body)
    except ValueError:
        request = None  # jsonrpcserver answers the parse error
    if isinstance(request, list) and request:
        answers = await asyncio.gather(*(_answer(item, methods, services) for item in request))
        done = [_encode(a) for a in answers if a is not None]
        return "[" + ", ".join(done) + "]" if done else ""
    if not _is_request(request):
        return await async_dispatch(
            body, methods=methods, context=services, deserializer=_loads, validator=validate_request
        )
    answer = await _answer(request, methods, services)
    return "" if answer is None else _encode(answer)
