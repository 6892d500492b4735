"""Logging setup, per-task context (vm_id, request_id) and secret handling.

One format for the whole daemon. Under systemd (JOURNAL_STREAM set) timestamps are left out
because journald adds its own. `vm_id`, `request_id` and `peer` come from contextvars: the
RPC layer sets `vm_id` and `request_id` for each verb call (api/rpc.py, the JSON-RPC id or a
fresh one), the STOMP transport sets `peer` for each request it runs, each VM owner task sets
`vm_id`, and a filter stamps them on every record, so no logger is passed around. Passwords
travel as `Secret` and print as `********`.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys

vm_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("vm_id", default="-")
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")
# The remote end of the connection a verb came over (STOMP sets it per request); "" = none.
peer_var: contextvars.ContextVar[str] = contextvars.ContextVar("peer", default="")


class Secret:
    """A password. Its repr and str never show the value; `reveal()` does, on purpose."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.vm_id = vm_id_var.get()
        record.request_id = request_id_var.get()
        peer = peer_var.get()
        record.peer = f" peer={peer}" if peer else ""
        return True


def setup(level: str) -> None:
    """Configure the root logger once, for the daemon process."""
    under_journald = "JOURNAL_STREAM" in os.environ
    fmt = "%(levelname)s %(name)s [vm=%(vm_id)s req=%(request_id)s%(peer)s] %(message)s"
    if not under_journald:
        fmt = "%(asctime)s " + fmt
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(fmt))
    handler.addFilter(_ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log would add a line per request on top of the verb line.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
