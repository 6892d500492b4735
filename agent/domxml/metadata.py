"""hvagent's own <metadata> block: the VM state that must survive a restart of hvagent.

It lives in the libvirt domain under hvagent's XML namespace, so a domain carrying it is one
hvagent owns (recovery adopts it) and its contents are the truth after a crash. `build` and
`read` are exact inverses (read(build(x)) == x, property-tested).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree
from lxml.builder import ElementMaker

from agent.status import ExitCode, ExitInfo, ExitReason

NS = "https://hvagent.org/xmlns/vm/1.0"
PREFIX = "hvagent"

# Default namespace, no prefix: virDomainSetMetadata declares PREFIX itself and fails
# ("failed to create a new XML namespace") when the element already declares it.
_M = ElementMaker(namespace=NS, nsmap={None: NS})


@dataclass(frozen=True)
class VmMetadata:
    exit: ExitInfo | None = None
    launch_paused: bool = False
    destroy_on_reboot: bool = False
    custom: dict[str, str] = field(default_factory=dict)
    # A running power operation (agent/power.py to_metadata): plan, stage, UTC deadlines.
    operation: dict[str, str] | None = None
    # The guest's RTC offset from UTC (s) as libvirt's last RTC_CHANGE said; None: as created.
    time_offset: int | None = None
    # VM.setBalloonTarget's target (KiB) for the running QEMU; None: never set (the maximum).
    balloon_target_kib: int | None = None


def build(meta: VmMetadata) -> etree._Element:
    root = _M.vm()
    if meta.launch_paused:
        root.append(_M.launchPaused("true"))
    if meta.destroy_on_reboot:
        root.append(_M.destroyOnReboot("true"))
    if meta.exit is not None:
        root.append(
            _M.exit(
                meta.exit.message, code=str(int(meta.exit.code)), reason=str(int(meta.exit.reason))
            )
        )
    if meta.custom:
        root.append(_M.custom(*(_M.property(v, name=k) for k, v in sorted(meta.custom.items()))))
    if meta.time_offset is not None:
        root.append(_M.timeOffset(str(meta.time_offset)))
    if meta.balloon_target_kib is not None:
        root.append(_M.balloonTarget(str(meta.balloon_target_kib)))
    if meta.operation is not None:
        root.append(_M.operation(*(_M.field(v, name=k) for k, v in sorted(meta.operation.items()))))
    return root


def find(domain: etree._Element) -> etree._Element | None:
    """hvagent's <vm> element inside a whole <domain>, or None for a foreign domain."""
    return domain.find(f"metadata/{{{NS}}}vm")


def read(root: etree._Element) -> VmMetadata:
    exit_el = root.find(_q("exit"))
    exit_info = None
    if exit_el is not None:
        exit_info = ExitInfo(
            ExitCode(int(exit_el.get("code", "0"))),
            ExitReason(int(exit_el.get("reason", "0"))),
            exit_el.text or "",
        )
    custom_el = root.find(_q("custom"))
    custom = {}
    if custom_el is not None:
        custom = {p.get("name", ""): p.text or "" for p in custom_el.iterfind(_q("property"))}
    op_el = root.find(_q("operation"))
    operation = None
    if op_el is not None:
        operation = {f.get("name", ""): f.text or "" for f in op_el.iterfind(_q("field"))}
    offset = root.findtext(_q("timeOffset"))
    balloon = root.findtext(_q("balloonTarget"))
    return VmMetadata(
        time_offset=int(offset) if offset and offset.lstrip("-").isdigit() else None,
        balloon_target_kib=int(balloon) if balloon and balloon.isdigit() else None,
        exit=exit_info,
        operation=operation,
        launch_paused=root.findtext(_q("launchPaused")) == "true",
        destroy_on_reboot=root.findtext(_q("destroyOnReboot")) == "true",
        custom=custom,
    )


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"
