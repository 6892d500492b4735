"""JSON-RPC plumbing around jsonrpcserver: verb wrapping, request validation, errors.

`expose(name, fn)` turns a plain `async def verb(services, vmID, ...)` into what jsonrpcserver
calls. The wrapper binds the verb's own signature itself (so a wrong or missing parameter is
answered -32602 with the parameter named in `error.data.param`), applies the recovery gate,
turns `AgentError`s into their stable code and anything unexpected into -32603 with an
`error_id` that is also in the log (never a traceback or exception text on the wire), and logs
one line per call: method, VM, outcome, duration.

`dispatch(text, methods, services)` is the request entry point. It replaces jsonrpcserver's
jsonschema validator (~60 us per call here) with the same structural checks written out, and
sends a single request straight to jsonrpcserver's `dispatch_request` instead of through its
batch path, which wraps even one request in `asyncio.gather` (a Task per call). Batches still
go through jsonrpcserver's batch path, entries concurrently. See bench/rpc_ping.py.
"""

from __future__ import annotations

import inspect
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from jsonrpcserver import Error, Success, async_dispatch
from jsonrpcserver.async_dispatcher import dispatch_request
from jsonrpcserver.dispatcher import create_request, not_notification, to_response
from jsonrpcserver.response import to_serializable_one
from jsonrpcserver.result import Result

from agent import errors
from agent.api.context import Services
from agent.logs import vm_id_var

log = logging.getLogger("agent.api")

Verb = Callable[..., Awaitable[Any]]
_NAMED = re.compile(r"'(\w+)'")
_ANY_ARGS = inspect.Signature(
    [
        inspect.Parameter("args", inspect.Parameter.VAR_POSITIONAL),
        inspect.Parameter("kwargs", inspect.Parameter.VAR_KEYWORD),
    ]
)


def expose(name: str, fn: Verb, *, needs_recovery: bool) -> Callable[..., Awaitable[Result]]:
    signature = inspect.signature(fn)

    async def handler(services: Services, *args: Any, **kwargs: Any) -> Result:
        start = time.monotonic()
        vm = kwargs.get("vmID") if isinstance(kwargs.get("vmID"), str) else None
        if vm:
            vm_id_var.set(vm)
        try:
            try:
                bound = signature.bind(services, *args, **kwargs)
            except TypeError as exc:
                match = _NAMED.search(str(exc))
                raise errors.InvalidParams(
                    str(exc), param=match.group(1) if match else None
                ) from None
            if needs_recovery and not services.registry.recovered.is_set():
                raise errors.Recovering()
            result = await fn(*bound.args, **bound.kwargs)
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
            return Error(exc.code, exc.message, exc.data)
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception("%s failed unexpectedly, error_id=%s", name, error_id)
            _log_call(
                services, name, vm, start, f"internal error {error_id}", logging.ERROR,
                outcome="internal_error",
            )  # fmt: skip
            return Error(-32603, "Internal error", {"error_id": error_id})
        _log_call(services, name, vm, start, "ok", logging.INFO, outcome="ok")
        return Success(True if result is None else result)

    handler.__signature__ = _ANY_ARGS  # type: ignore[attr-defined]
    handler.__name__ = name
    return handler


def _loggable(exc: errors.AgentError) -> str:
    """The error's reason, except for bad input: validation messages may quote the value
    (a password among them), so those log only the parameter's name."""
    if isinstance(exc, errors.InvalidParams | errors.MissingParameter):
        return f"param={exc.data.get('param', '?')}"
    return exc.reason


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
    log.log(level, "%s vm=%s %s in %.1f ms", name, vm or "-", text, elapsed * 1000)
    metrics = getattr(services, "metrics", None)  # unit tests hand in bare namespaces
    if metrics is not None:
        metrics.rpc_finished(name, outcome, elapsed)


def validate_request(request: Any) -> Any:
    """Raise for anything that is not a JSON-RPC 2.0 request or a non-empty batch of them."""
    items = request if isinstance(request, list) else [request]
    if not items:
        raise ValueError("empty batch")
    for item in items:
        if (
            not isinstance(item, dict)
            or item.get("jsonrpc") != "2.0"
            or not isinstance(item.get("method"), str)
            or not isinstance(item.get("params", []), list | dict)
            or not isinstance(item.get("id"), str | int | type(None))
            or isinstance(item.get("id"), bool)
            or not set(item) <= {"jsonrpc", "method", "params", "id"}
        ):
            raise ValueError("not a JSON-RPC 2.0 request")
    return request


async def dispatch(text: str | bytes, methods: dict[str, Any], services: Services) -> str:
    """Answer one HTTP body: a JSON-RPC response, a batch of them, or "" (notifications)."""
    try:
        request = json.loads(text)
        single = isinstance(request, dict)
        if single:
            validate_request(request)
    except ValueError:
        single = False  # parse and validation errors: jsonrpcserver answers them
    if not single:
        return await async_dispatch(
            text, methods=methods, context=services, validator=validate_request
        )
    handler = methods.get(request["method"])  # MethodTable answers unknown names itself
    if handler is None:
        outcome = await dispatch_request(methods, services, create_request(request))
        if not not_notification(outcome):
            return ""
        return json.dumps(to_serializable_one(to_response(*outcome)))
    # Our handlers bind and check the verb's own signature (see expose), so jsonrpcserver's
    # validate_args, which recomputes inspect.signature on every call, is skipped here.
    params = request.get("params", [])
    result = await (handler(services, *params) if isinstance(params, list)
                    else handler(services, **params))  # fmt: skip
    if "id" not in request:
        return ""
    return json.dumps(to_serializable_one(to_response(create_request(request), result)))
