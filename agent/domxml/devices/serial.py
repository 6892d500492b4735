"""<serial> + <console>: the guest's serial console on a pty, mirrored to a log file.

The pty keeps `virsh console` working; `<log>` (written by virtlogd) is what operators and
tests read the guest's boot from.
"""

from __future__ import annotations

from lxml import etree

from agent.domxml.builder import E


def build(log_path: str) -> list[etree._Element]:
    serial = E.serial(
        E.log(file=log_path, append="on"),
        E.target(port="0"),
        type="pty",
    )
    console = E.console(E.target(type="serial", port="0"), type="pty")
    return [serial, console]
