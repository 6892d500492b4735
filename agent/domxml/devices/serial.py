"""<serial> + <console>: the guest's serial console, mirrored to a log file.

On a pty by default (`virsh console` works); on a unix socket (bind) when the engine asked
for one (`consoleType: serial`, `enableSocket`), at the path ovirt-vmconsole expects. `<log>`
(written by virtlogd) is what operators and tests read the guest's boot from, either way.
"""

from __future__ import annotations

from lxml import etree

from agent.domxml.builder import E


def build(log_path: str, socket: str | None = None) -> list[etree._Element]:
    if socket is None:
        serial = E.serial(E.log(file=log_path, append="on"), E.target(port="0"), type="pty")
        console = E.console(E.target(type="serial", port="0"), type="pty")
        return [serial, console]
    serial = E.serial(
        E.source(mode="bind", path=socket),
        E.log(file=log_path, append="on"),
        E.target(port="0"),
        type="unix",
    )
    console = E.console(
        E.source(mode="bind", path=socket), E.target(type="serial", port="0"), type="unix"
    )
    return [serial, console]
