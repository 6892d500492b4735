"""oVirt OVF (as ovirt-engine writes it for the hosted-engine VM, reference hosted-engine.md §1)
-> legacy vmParams plus warnings, so VM.create validates and renders it like any request.

VM-level fields live here (id, name, CPU topology, memory and its floor/ceiling, machine and
firmware from BiosType, CPU model, display); the hardware Items are `ovf_devices`; an embedded
`<EngineXml>` is `engine_xml`. Elements are matched by local name: the engine writes most of
them un-namespaced and the `ovf` URI differs between versions (with and without a trailing
slash). Pure: the only host look-up is `HostView.exists` for disk volumes.
"""

from __future__ import annotations

import uuid
from typing import Any

from lxml import etree

from agent.domxml import XmlError, parse
from agent.errors import InvalidParams, MissingParameter
from agent.intake import engine_xml, ovf_devices
from agent.intake.host import HostView, Warnings, refuse

PARAM = "vmParams.ovf"
HE_CHANNEL = "org.ovirt.hosted-engine-setup.0"
_MIB_UNITS = {
    "megabytes": 1,
    "mb": 1,
    "mib": 1,
    "byte * 2^20": 1,
    "gigabytes": 1024,
    "gb": 1024,
    "gib": 1024,
    "byte * 2^30": 1024,
}
# BiosType (engine value - 1): machine family, firmware.
_BIOS = {0: ("pc", None), 1: ("q35", None), 2: ("q35", "efi"), 3: ("q35", "efi")}
# DefaultDisplayType ordinal -> video model (reference §1.3); 4 = headless.
DISPLAY_VIDEO = {0: "cirrus", 1: "qxl", 2: "vga", 3: "bochs", 4: "none"}


def local(el: etree._Element) -> str:
    tag = el.tag
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def child(el: etree._Element, name: str) -> etree._Element | None:
    for c in el:
        tag = c.tag
        if isinstance(tag, str) and (tag == name or tag.endswith("}" + name)):
            return c
    return None


def text(el: etree._Element, name: str) -> str | None:
    c = child(el, name)
    if c is None or c.text is None or not c.text.strip():
        return None
    return c.text.strip()


def attr(el: etree._Element, name: str) -> str | None:
    for key, value in el.attrib.items():
        if etree.QName(key).localname == name:
            return value
    return None


def section(content: etree._Element, kind: str) -> etree._Element | None:
    for c in content:
        if local(c) == kind or (local(c) == "Section" and (attr(c, "type") or "").endswith(kind)):
            return c
    return None


def bad(reason: str, element: str) -> InvalidParams:
    return refuse(InvalidParams, reason, PARAM, element=element)  # type: ignore[return-value]


def integer(value: str | None, element: str, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 12 or int(value) < minimum:
        raise bad(f"<{element}> must be an integer >= {minimum}, got {value[:40]!r}", element)
    return int(value)


def load(text_: Any, param: str = PARAM) -> etree._Element:
    if not isinstance(text_, str) or not text_.strip():
        raise InvalidParams(f"{param}: expected the OVF as a non-empty string", param=param)
    if len(text_) > 16 * 1024 * 1024:
        raise InvalidParams(f"{param}: the OVF is larger than 16 MiB", param=param)
    try:
        root = parse(text_)
    except (XmlError, UnicodeEncodeError, ValueError) as exc:
        raise InvalidParams(f"{param}: not well-formed XML: {exc}", param=param) from None
    if local(root) != "Envelope":
        raise InvalidParams(
            f"{param}: root element must be an OVF <Envelope>, got <{local(root)}>", param=param
        )
    return root


def convert(
    ovf_text: Any, vm_id: uuid.UUID, host: HostView, param: str = PARAM
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The vmParams VM.create would have received, and what was adapted on the way."""
    root = load(ovf_text, param)
    content = child(root, "Content")
    if content is None:
        raise MissingParameter(f"{param}: no <Content> (VirtualSystem) element", param=param)
    warnings = Warnings()
    ovf_id = read_vm_id(content, param)
    if ovf_id != vm_id:
        raise InvalidParams(
            f"{param}: the OVF's VM id {ovf_id} does not match vmID {vm_id}", param=param
        )
    machine, firmware = _machine(content, host, warnings)
    engine = text(content, "EngineXml")
    if engine is not None:
        params = engine_xml.use(engine, vm_id, host, warnings)
        if params is not None:
            return params, warnings
    hardware = section(content, "VirtualHardwareSection_Type")
    if hardware is None:
        raise MissingParameter(f"{param}: no VirtualHardwareSection", param=param)
    items = [i for i in hardware if local(i) == "Item"]
    params: dict[str, Any] = {"vmId": str(vm_id), "destroyOnReboot": True}
    name = text(content, "Name")
    if name is not None:
        params["vmName"] = name
    params.update(_cpu(items, warnings))
    params.update(_memory(content, items, warnings))
    if machine:
        params["emulatedMachine"] = machine
    if firmware:
        params["firmware"] = firmware
    cpu_name = text(content, "CustomCpuName")
    if cpu_name is not None:
        if host.cpu_models is not None and cpu_name not in host.cpu_models:
            warnings.add(
                f"CPU model {cpu_name} is not offered by this host; the host's default is used",
                "CustomCpuName",
            )
        else:
            params["cpuType"] = cpu_name
    display = integer(
        text(content, "DefaultDisplayType") or text(content, "default_display_type"),
        "DefaultDisplayType",
    )
    if display is not None and display not in DISPLAY_VIDEO:
        warnings.add(f"unknown DefaultDisplayType {display}; VGA is used", "DefaultDisplayType")
        display = 2
    disks = {attr(d, "diskId"): d for d in disk_section(content)}
    params["devices"] = ovf_devices.convert(
        items, disks, display, machine or host.default_machine or "", host, warnings
    )
    params["devices"].append({"type": "channel", "device": "unix", "name": HE_CHANNEL})
    return params, warnings


def read_vm_id(content: etree._Element, param: str) -> uuid.UUID:
    os_section = section(content, "OperatingSystemSection_Type")
    raw = attr(os_section, "id") if os_section is not None else None
    if not raw:
        raise MissingParameter(
            f"{param}: the VM id (OperatingSystemSection ovf:id) is missing",
            param=param,
            element="OperatingSystemSection/@ovf:id",
        )
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise bad(
            f"the VM id {raw[:60]!r} is not a UUID", "OperatingSystemSection/@ovf:id"
        ) from None


def disk_section(content: etree._Element) -> list[etree._Element]:
    root = content.getparent()
    assert root is not None
    disks = section(root, "DiskSection_Type")
    return [] if disks is None else [d for d in disks if local(d) == "Disk"]


def rtype(item: etree._Element) -> int | None:
    value = text(item, "ResourceType")
    return int(value) if value is not None and value.isdigit() and len(value) < 6 else None


def _cpu(items: list[etree._Element], warnings: Warnings) -> dict[str, Any]:
    cpu = next((i for i in items if rtype(i) == 3), None)
    if cpu is None:
        warnings.add("the OVF has no CPU Item; 1 vCPU is used", "Item[ResourceType=3]")
        return {"smp": "1"}
    sockets = integer(text(cpu, "num_of_sockets"), "rasd:num_of_sockets", 1) or 1
    cores = integer(text(cpu, "cpu_per_socket"), "rasd:cpu_per_socket", 1) or 1
    threads = integer(text(cpu, "threads_per_cpu"), "rasd:threads_per_cpu", 1) or 1
    vcpus = sockets * cores * threads
    if vcpus > 4096:
        raise bad(f"{vcpus} vCPUs is more than 4096", "Item[ResourceType=3]")
    out = {"smp": str(vcpus), "smpCoresPerSocket": str(cores), "smpThreadsPerCore": str(threads)}
    max_vcpus = integer(text(cpu, "max_num_of_vcpus"), "rasd:max_num_of_vcpus", 1)
    if max_vcpus is not None:
        if max_vcpus < vcpus or max_vcpus > 4096 or max_vcpus % (cores * threads):
            warnings.add(
                f"max_num_of_vcpus {max_vcpus} does not fit {vcpus} vCPUs of {cores} cores x "
                f"{threads} threads; no vCPU hot-plug ceiling is set",
                "rasd:max_num_of_vcpus",
            )
        else:
            out["maxVCpus"] = str(max_vcpus)
    return out


def _memory(
    content: etree._Element, items: list[etree._Element], warnings: Warnings
) -> dict[str, Any]:
    mem = next((i for i in items if rtype(i) == 4), None)
    quantity = text(mem, "VirtualQuantity") if mem is not None else None
    if quantity is None:
        raise MissingParameter(
            f"{PARAM}: the OVF has no memory (Item ResourceType 4 with rasd:VirtualQuantity)",
            param=PARAM,
            element="Item[ResourceType=4]/rasd:VirtualQuantity",
        )
    assert mem is not None
    unit = text(mem, "AllocationUnits") or "MegaBytes"
    factor = _MIB_UNITS.get(unit.lower())
    if factor is None:
        raise bad(
            f"unknown memory unit {unit[:40]!r} (MegaBytes or GigaBytes expected)",
            "Item[ResourceType=4]/rasd:AllocationUnits",
        )
    memory = (integer(quantity, "rasd:VirtualQuantity", 1) or 0) * factor
    out: dict[str, Any] = {"memSize": str(memory)}
    floor = integer(text(content, "MinAllocatedMem"), "MinAllocatedMem")
    if floor is not None:
        if floor > memory:
            warnings.add(
                f"MinAllocatedMem {floor} MiB exceeds the memory ({memory} MiB); "
                "the whole memory is guaranteed",
                "MinAllocatedMem",
            )
            floor = memory
        out["memGuaranteedSize"] = str(floor)
    ceiling = integer(text(content, "MaxMemorySizeMb"), "MaxMemorySizeMb")
    if ceiling is not None and ceiling > memory:
        out["maxMemSize"] = str(ceiling)
    elif ceiling is not None and ceiling < memory:
        warnings.add(
            f"MaxMemorySizeMb {ceiling} is below the memory ({memory} MiB); no hot-plug ceiling",
            "MaxMemorySizeMb",
        )
    return out


def _machine(
    content: etree._Element, host: HostView, warnings: Warnings
) -> tuple[str | None, str | None]:
    bios_raw = text(content, "BiosType")
    bios = integer(bios_raw, "BiosType") if bios_raw is not None else None
    family, firmware = _BIOS.get(bios, (None, None)) if bios is not None else (None, None)
    if bios is not None and bios not in _BIOS:
        warnings.add(f"unknown BiosType {bios}; the host's default machine is used", "BiosType")
    if bios == 3:
        warnings.add("secure boot (BiosType 3) is not honoured; UEFI without it", "BiosType")
    machine = text(content, "CustomEmulatedMachine")
    if machine is not None and not host.machine_supported(machine):
        fallback = family if family and host.machine_supported(family) else host.default_machine
        warnings.add(
            f"machine type {machine} is not offered by this host's QEMU; "
            f"{fallback or 'the host default'} is used instead",
            "CustomEmulatedMachine",
            fallback=fallback,
        )
        machine = fallback
    if machine is None and family is not None:
        machine = family if host.machine_supported(family) else host.default_machine
    if machine and family and _family(machine) != family:
        warnings.add(
            f"BiosType {bios} asks for a {family} machine but the machine is {machine}; "
            f"{machine} is used",
            "BiosType",
        )
    return machine, firmware


def _family(machine: str) -> str:
    return "q35" if "q35" in machine else "pc"
