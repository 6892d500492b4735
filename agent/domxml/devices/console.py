"""<console>: the extra virtio console (on a pty, or a unix socket hvagent names)."""

from __future__ import annotations

from lxml import etree

from agent.domxml.builder import E
from agent.spec import ConsoleSpec


def build(console: ConsoleSpec) -> etree._Element:
    if console.socket is None:
        return E.console(E.target(type="virtio", port="1"), type="pty")
    return E.console(
        E.source(mode="bind", path=console.socket),
        E.target(type="virtio", port="1"),
        type="unix",
    )
