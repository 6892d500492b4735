"""hosted-engine `vm.conf` -> vmParams, with the rules of hosted-engine-setup's parser
(reference hosted-engine.md §3.2-3.3), and the storage and host adaptations an OVF gets.

Per line: all whitespace is deleted, then everything from `#`; empty lines are skipped; the
line splits at the first `=` (no `=`: the value is ""). `devices=` appends a spec (repeated
lines), `drive=` appends to `drives`, `cpuPinning`/`numaTune` are nested specs,
`guestNumaNodes` appends, `custom_<k>` goes to `custom[k]`, `cdrom`/`floppy` are specs, any other
key is a string. A spec is a nested `{name:value,...}` (values run to the next `,` or `}`),
else `k:v,k:v` pairs (domain/pool/image/volume -> ...ID), else plain text. `vt` ->
`kvmEnable`, `imageFile` -> `hda`, `moreImages` -> `hdd`, `hdc`, `hdb`. `xmlBase64` is decoded
into `xml`; `launchPaused` with any non-empty value starts the VM paused.
A parse error is refused with the parser's message and the line number.
"""

from __future__ import annotations

import base64
import binascii
import re
import uuid
from typing import Any

from agent.errors import InvalidParams
from agent.intake import engine_xml
from agent.intake.host import HostView, Warnings

PARAM = "vmParams.vmConf"
_WS = re.compile(r"\s+")
_NOT_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_KEYMAP = {"domain": "domainID", "pool": "poolID", "image": "imageID", "volume": "volumeID"}


class SpecError(ValueError):
    pass


def _nested(text: str, pos: int) -> tuple[dict[str, Any], int]:
    """Parse `{name:value,...}` starting at text[pos] == '{'; returns (dict, index after '}')."""
    out: dict[str, Any] = {}
    pos += 1
    while True:
        if pos >= len(text):
            raise SpecError("nested spec not terminated")
        if text[pos] == "}":
            return out, pos + 1
        colon = text.find(":", pos)
        if colon < 0:
            raise SpecError("missing name value separator")
        name = text[pos:colon]
        pos = colon + 1
        if pos < len(text) and text[pos] == "{":
            value, pos = _nested(text, pos)
        else:
            end = pos
            while end < len(text) and text[end] not in ",}":
                end += 1
            value, pos = text[pos:end], end
        out[name] = value
        if pos < len(text) and text[pos] == ",":
            pos += 1


def spec(text: str) -> Any:
    if text.startswith("{"):
        value, end = _nested(text, 0)
        if end != len(text):
            raise SpecError("Trailing garbage after spec")
        return value
    if "," in text:
        out = {}
        for pair in text.split(","):
            key, _, value = pair.partition(":")
            out[_KEYMAP.get(key, key)] = value
        return out
    return text


def parse(text: Any) -> dict[str, Any]:
    """The setup tool's parse result: a dict of strings, lists and nested dicts."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidParams(
            f"{PARAM}: expected the vm.conf text as a non-empty string", param=PARAM
        )
    if len(text) > 16 * 1024 * 1024:
        raise InvalidParams(f"{PARAM}: larger than 16 MiB", param=PARAM)
    bad = _NOT_TEXT.search(text)
    if bad is not None:  # NULs, controls, lone surrogates: nothing a vm.conf holds
        line = text.count("\n", 0, bad.start()) + 1
        raise InvalidParams(
            f"{PARAM}: line {line}: character {bad.group()!r} not allowed", param=PARAM, line=line
        )
    params: dict[str, Any] = {}
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = _WS.sub("", raw).split("#", 1)[0]
        if not line:
            continue
        key, _, value = line.partition("=")
        try:
            if key == "devices":
                params.setdefault("devices", []).append(spec(value))
            elif key == "drive":
                params.setdefault("drives", []).append(spec(value))
            elif key in ("cpuPinning", "numaTune"):
                params[key] = spec(value)
            elif key == "guestNumaNodes":
                params.setdefault(key, []).append(spec(value))
            elif key.startswith("custom_"):
                params.setdefault("custom", {})[key[len("custom_") :]] = value
            elif key in ("cdrom", "floppy"):
                params[key] = spec(value)
            else:
                params[key] = value
        except SpecError as exc:
            raise InvalidParams(
                f"{PARAM}: line {lineno}: {exc}", param=PARAM, line=lineno
            ) from None
    if "vt" in params:
        params["kvmEnable"] = params.pop("vt")
    if "imageFile" in params:
        params["hda"] = params.pop("imageFile")
    if "moreImages" in params:
        for drive, path in zip(
            ("hdd", "hdc", "hdb"), params.pop("moreImages").split(","), strict=False
        ):
            params[drive] = path
    if "xmlBase64" in params:
        try:
            params["xml"] = base64.b64decode(params.pop("xmlBase64"), validate=True).decode()
        except (binascii.Error, ValueError) as exc:
            line = next(n for n, r in enumerate(text.splitlines(), 1) if "xmlBase64" in r)
            raise InvalidParams(
                f"{PARAM}: line {line}: xmlBase64 does not decode: {exc}", param=PARAM, line=line
            ) from None
    return params


def convert(
    text: Any, vm_id: uuid.UUID, host: HostView
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    params = parse(text)
    warnings = Warnings()
    paused = bool(params.get("launchPaused"))
    params.pop("launchPaused", None)
    conf_id = params.get("vmId")
    if "xml" in params:
        xml_id = xml_uuid(params["xml"])
        if conf_id and xml_id and conf_id != xml_id:
            warnings.add(
                f"vm.conf vmId {conf_id} differs from the XML's uuid {xml_id}; "
                "the XML's uuid counts",
                "vmId",
                vmConfId=conf_id,
                xmlId=xml_id,
            )
        if xml_id != str(vm_id):
            raise InvalidParams(
                f"{PARAM}: the XML's uuid {xml_id} does not match vmID {vm_id}", param=PARAM
            )
        try:
            xml = engine_xml.prepare(params["xml"], vm_id, host, PARAM)
        except engine_xml.Unusable as exc:
            raise InvalidParams(f"{PARAM}: xmlBase64: {exc}", param=PARAM) from None
        out: dict[str, Any] = {"vmId": str(vm_id), "xml": xml}
        if paused:
            out["launchPaused"] = "true"
        if "custom" in params:
            out["custom"] = params["custom"]
        return out, warnings
    if conf_id != str(vm_id):
        raise InvalidParams(f"{PARAM}: vmId {conf_id} does not match vmID {vm_id}", param=PARAM)
    if paused:
        params["launchPaused"] = "true"
    params["destroyOnReboot"] = "true"
    machine = params.get("emulatedMachine")
    if machine and not host.machine_supported(machine):
        warnings.add(
            f"machine type {machine} is not offered by this host's QEMU; "
            f"{host.default_machine or 'the host default'} is used instead",
            "emulatedMachine",
        )
        params.pop("emulatedMachine")
        if host.default_machine:
            params["emulatedMachine"] = host.default_machine
    cpu = params.get("cpuType")
    if cpu and host.cpu_models is not None and cpu.split(",")[0] not in host.cpu_models:
        warnings.add(f"CPU model {cpu} is not offered by this host; the default is used", "cpuType")
        params.pop("cpuType")
    devices = params.get("devices", [])
    for i, dev in enumerate(devices):
        if isinstance(dev, dict):
            _device(dev, i, host, warnings)
    devices.append({"type": "channel", "device": "unix", "name": engine_xml.HE_CHANNEL})
    params["devices"] = devices
    return params, warnings


def _device(dev: dict[str, Any], i: int, host: HostView, warnings: Warnings) -> None:
    for key, value in list(dev.items()):
        if value == "None":  # how the HA converter writes a missing address (reference §2.3)
            del dev[key]
    if dev.get("type") == "disk" and dev.get("device", "disk") == "disk" and not dev.get("path"):
        param = f"{PARAM}.devices[{i}]"
        path = host.volume_path(
            dev.get("domainID", ""), dev.get("imageID", ""), dev.get("volumeID", ""), param
        )
        if not host.exists(path):
            raise InvalidParams(f"{param}: volume {path} does not exist", param=param, path=path)
        dev["path"] = path
    if dev.get("type") == "disk" and dev.get("iface") == "virtio_scsi":
        dev["iface"] = "scsi"
    if dev.get("type") == "interface" and not dev.get("macAddr"):
        warnings.add("a NIC without macAddr gets a MAC from libvirt", f"devices[{i}]")
    if dev.get("type") == "console":
        dev.pop("specParams", None)
    if dev.get("type") == "rng":
        dev.pop("model", None)
    if dev.get("type") == "controller" and dev.get("device") == "virtio-scsi":
        dev["device"], dev["model"] = "scsi", "virtio-scsi"


def xml_uuid(xml: str) -> str | None:
    m = re.search(r"<uuid>\s*([0-9a-fA-F-]{36})\s*</uuid>", xml)
    return m.group(1).lower() if m else None
