"""Host-access policy: what on the host a VM may touch, checked before anything is defined.

Paths (vmParams `kernel`, `initrd`, every disk/cdrom/floppy `path`; in domain XML every disk
`<source file|dev|dir>` and backing store, `<os>` `<kernel>`, `<initrd>`, `<dtb>`):
- must be absolute, without `..` components;
- a path under /dev/ is a block device: it must start with one of `block_prefixes` and
  resolve (symlinks followed) to a device node under /dev/;
- any other path must resolve, symlinks followed, under one of `image_roots`.
`<loader>` and `<nvram>` (and its template) must resolve under `firmware_roots`.

Domain XML (the engine's, and hvagent's own built from vmParams, checked the same way):
- `<emulator>` only if it is one of the host's own (from libvirt's capabilities; the caller
  hands them in); libvirt picks the right one when the element is absent;
- no element in the `qemu:` namespace (command-line passthrough);
- no host device unless `allow_hostdev`: `<hostdev>`, `<interface type='hostdev'>`, TPM
  passthrough, `<input type='passthrough|evdev'>`, `<smartcard mode='host'>`; `<rng>` reads
  only /dev/urandom, /dev/random or /dev/hwrng; no `<filesystem>` unless `allow_filesystem`;
  no `<seclabel type='none'>` unless `allow_seclabel_none`;
- chardevs (`<serial>`, `<parallel>`, `<console>`, `<channel>`) of type file, pipe, dev or
  unix, every `<log file>`, `<graphics>` sockets and `<shmem>` servers only under
  `chardev_roots` (hvagent's own directories and libvirt's); `<os><acpi><table>` under the
  image roots;
- no interface `<script>` or `<downscript>`;
- only reviewed elements as children of `<domain>` and `<devices>` (DOMAIN_CHILDREN,
  DEVICE_CHILDREN): an unknown or namespaced element there is refused by name. Engine XML's
  deeper elements and every attribute are allow-listed in xmlattrs.py.
A refusal is -32602 naming the field (`data.param`: e.g. `devices[0].path`, `kernel`,
`vmParams.xml`) with the element or path in `data.reason`. Pure except `os.path.realpath`.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Iterable, Mapping
from typing import Any

from lxml import etree

from agent import wirevalues
from agent.config import HostAccessConfig as Policy
from agent.config import VirtConfig
from agent.errors import InvalidParams

XML_PARAM = "vmParams.xml"
QEMU_NS = "http://libvirt.org/schemas/domain/qemu/1.0"
_QEMU_ANY = "{" + QEMU_NS + "}*"
_CHARDEVS = ("serial", "parallel", "console", "channel")
_CHARDEV_FILES = ("file", "pipe", "dev", "unix")
# (device tag, child tag or None, attribute, value or None for any): what it is.
_HOST_DEVICES = (
    ("hostdev", None, None, None, "<hostdev>"),
    ("interface", None, "type", "hostdev", "<interface type='hostdev'>"),
    ("tpm", "backend", "type", "passthrough", "<tpm> passthrough"),
    ("input", None, "type", "passthrough", "<input type='passthrough'>"),
    ("input", None, "type", "evdev", "<input type='evdev'>"),
    ("smartcard", None, "mode", "host", "<smartcard mode='host'>"),
)
_RNG_SOURCES = ("/dev/urandom", "/dev/random", "/dev/hwrng")
# The elements a domain and its <devices> may have: libvirt's QEMU-relevant schema, less
# what runs host programs or needs host services hvagent does not manage (<bootloader>,
# <idmap>, <lease>: sanlock). Anything else is refused by name, so a new libvirt element
# reaches the host only once it is reviewed and added here. Namespaced metadata is kept
# (<metadata> children are not looked at); qemu: elements are refused above.
DOMAIN_CHILDREN = frozenset(
    [
        "name",
        "uuid",
        "genid",
        "title",
        "description",
        "metadata",
        "maxMemory",
        "memory",
        "currentMemory",
        "blkiotune",
        "memtune",
        "memoryBacking",
        "vcpu",
        "vcpus",
        "iothreads",
        "iothreadids",
        "cputune",
        "numatune",
        "resource",
        "sysinfo",
        "os",
        "features",
        "cpu",
        "clock",
        "on_poweroff",
        "on_reboot",
        "on_crash",
        "on_lockfailure",
        "pm",
        "perf",
        "devices",
        "seclabel",
        "keywrap",
        "launchSecurity",
    ]
)
DEVICE_CHILDREN = frozenset(
    [
        "emulator",
        "disk",
        "controller",
        "filesystem",
        "interface",
        "input",
        "sound",
        "hostdev",
        "graphics",
        "video",
        "console",
        "serial",
        "parallel",
        "channel",
        "smartcard",
        "redirdev",
        "redirfilter",
        "hub",
        "watchdog",
        "memballoon",
        "rng",
        "tpm",
        "panic",
        "shmem",
        "memory",
        "iommu",
        "vsock",
        "audio",
    ]
)


def for_host(policy: Policy, virt: VirtConfig) -> Policy:
    """The policy with hvagent's own places added: [virt] image_root to the image roots,
    [virt] console_log_dir and console_socket_dir to the chardev roots."""
    return dataclasses.replace(
        policy,
        image_roots=(virt.image_root, *policy.image_roots),
        chardev_roots=(*policy.chardev_roots, virt.console_log_dir, virt.console_socket_dir),
    )


def refused(param: str, reason: str) -> InvalidParams:
    return InvalidParams(f"{param}: {reason}", param=param)


@functools.lru_cache(maxsize=256)
def _resolved_root(root: str) -> str:
    """A configured root as the file system resolves it (once per process: roots are the
    operator's directories, not request data)."""
    return os.path.realpath(root).rstrip("/") + "/"


def _under(real: str, roots: Iterable[str]) -> bool:
    for root in roots:
        base = _resolved_root(root)
        if real == base.rstrip("/") or real.startswith(base):
            return True
    return False


def check_path(
    path: str,
    param: str,
    roots: tuple[str, ...],
    policy: Policy,
    resolved: dict[str, str] | None = None,
) -> None:
    """Refuse `path` unless it is a block device from `block_prefixes` or resolves under
    `roots`. Both are followed through symlinks at this moment (validation time); `resolved`
    caches the resolutions within one check (one VM.create), so a path met twice (in vmParams
    and in the XML built from them) is resolved once."""
    if not path.startswith("/"):
        raise refused(param, f"{wirevalues.echo(path)} must be an absolute path")
    if "/../" in path or path.endswith("/.."):
        raise refused(param, f"{wirevalues.echo(path)} must not contain '..'")
    real = resolved.get(path) if resolved is not None else None
    if real is None:
        real = os.path.realpath(path)
        if resolved is not None:
            resolved[path] = real
    if path.startswith("/dev/"):
        if not any(path.startswith(p) for p in policy.block_prefixes):
            raise refused(
                param,
                f"block device {wirevalues.echo(path)} is not allowed: only under "
                f"{', '.join(policy.block_prefixes)} ([host_access] block_prefixes)",
            )
        if not real.startswith("/dev/"):
            raise refused(
                param, f"{wirevalues.echo(path)} resolves to {wirevalues.echo(real)}, not a device"
            )
        return
    if not _under(real, roots):
        raise refused(
            param,
            f"{wirevalues.echo(path)} resolves to {wirevalues.echo(real)}, outside the "
            f"allowed roots {', '.join(roots)} ([host_access])",
        )


def check_params(
    params: Mapping[str, Any], policy: Policy, resolved: dict[str, str] | None = None
) -> None:
    """The host paths in legacy vmParams (already validated as strings by the spec)."""
    for key in ("kernel", "initrd"):
        if isinstance(params.get(key), str) and params[key]:
            check_path(params[key], key, policy.image_roots, policy, resolved)
    devices = params.get("devices")
    for i, dev in enumerate(devices if isinstance(devices, list) else []):
        if not isinstance(dev, Mapping):
            continue
        if dev.get("type") == "disk" and isinstance(dev.get("path"), str) and dev["path"]:
            check_path(dev["path"], f"devices[{i}].path", policy.image_roots, policy, resolved)
        spec = dev.get("specParams")
        if (
            dev.get("type") == "tpm"
            and isinstance(spec, Mapping)
            and spec.get("mode") == "passthrough"
            and not policy.allow_hostdev
        ):
            raise refused(
                f"devices[{i}].specParams.mode",
                "TPM passthrough hands a host device to the VM ([host_access] allow_hostdev)",
            )


def check_domain(
    root: etree._Element,
    policy: Policy,
    emulators: Iterable[str],
    resolved: dict[str, str] | None = None,
) -> None:
    """Refuse domain XML that reaches the host beyond the policy (see the module doc).
    One pass collects the devices by tag; lxml's tag-filtered iterators do the rest (no
    path expressions: this runs on every VM.create)."""
    for el in root.iter(_QEMU_ANY):
        raise _xml(f"<qemu:{etree.QName(el).localname}> (QEMU passthrough) is not allowed")
    _check_known(root, DOMAIN_CHILDREN, "<domain>")
    devs: dict[str, list[etree._Element]] = {}
    for devices in root.iterchildren("devices"):
        _check_known(devices, DEVICE_CHILDREN, "<devices>")
        for el in devices.iterchildren(tag=etree.Element):
            devs.setdefault(el.tag, []).append(el)
    allowed = set(emulators)
    for el in devs.get("emulator", ()):
        text = (el.text or "").strip()
        if text not in allowed:
            raise _xml(
                f"<emulator> {wirevalues.echo(text)} is not this host's emulator "
                f"({', '.join(sorted(allowed)) or 'unknown'}); leave it out and libvirt picks it"
            )
    if not policy.allow_hostdev:
        for tag, child, attr, value, what in _HOST_DEVICES:
            for dev in devs.get(tag, ()):
                for el in dev.iterchildren(child) if child else (dev,):
                    if attr is None or el.get(attr) == value:
                        raise _xml(
                            f"{what} hands a host device to the VM ([host_access] allow_hostdev)"
                        )
    for rng in devs.get("rng", ()):
        for el in rng.iterchildren("backend"):
            if el.get("model") == "random" and (el.text or "").strip() not in _RNG_SOURCES:
                raise _xml(
                    f"<rng> backend {wirevalues.echo(el.text or '')} is not one of "
                    f"{', '.join(_RNG_SOURCES)}"
                )
    if not policy.allow_filesystem and devs.get("filesystem"):
        raise _xml("<filesystem> shares host files ([host_access] allow_filesystem)")
    if not policy.allow_seclabel_none and any(
        el.get("type") == "none" for el in root.iter("seclabel")
    ):
        raise _xml("<seclabel type='none'> is not allowed ([host_access] allow_seclabel_none)")
    for tag in ("script", "downscript"):
        if any(True for nic in devs.get("interface", ()) for _ in nic.iterchildren(tag)):
            raise _xml(f"interface <{tag}> runs a host program and is not allowed")
    _check_chardevs(root, devs, policy, resolved)
    _check_files(root, devs, policy, resolved)


def _xml(reason: str) -> InvalidParams:
    return refused(XML_PARAM, reason)


def _check_known(parent: etree._Element, allowed: frozenset[str], where: str) -> None:
    for el in parent.iterchildren(tag=etree.Element):  # not comments or PIs
        if el.tag not in allowed:  # a namespaced tag ("{ns}name") never is
            name = etree.QName(el).localname
            raise _xml(
                f"<{name[:64]}> in {where} is not an element hvagent allows "
                "(reviewed elements only; see README, Host access)"
            )


def _check_chardevs(
    root: etree._Element,
    devs: dict[str, list[etree._Element]],
    policy: Policy,
    resolved: dict[str, str] | None,
) -> None:
    roots = policy.chardev_roots
    for tag in _CHARDEVS:
        for dev in devs.get(tag, ()):
            if dev.get("type") in _CHARDEV_FILES:
                for source in dev.iterchildren("source"):
                    path = source.get("path")
                    if path:
                        what = f"<{tag} type='{dev.get('type')}'> source"
                        _xml_path(path, what, roots, policy, resolved)
    for el in devs.get("graphics", ()):
        for sock in (el.get("socket"), *(ls.get("socket") for ls in el.iterchildren("listen"))):
            if sock:
                _xml_path(sock, "<graphics> socket", roots, policy, resolved)
    for shmem in devs.get("shmem", ()):
        for el in shmem.iterchildren("server"):
            if el.get("path"):
                _xml_path(el.get("path", ""), "<shmem> server", roots, policy, resolved)
    for devices in root.iterchildren("devices"):
        for log in devices.iter("log"):
            if log.get("file"):
                _xml_path(log.get("file", ""), "<log file>", roots, policy, resolved)


def _check_files(
    root: etree._Element,
    devs: dict[str, list[etree._Element]],
    policy: Policy,
    resolved: dict[str, str] | None,
) -> None:
    images, firmware = policy.image_roots, policy.firmware_roots
    for disk in devs.get("disk", ()):
        for source in disk.iter("source"):
            for attr in ("file", "dev", "dir"):
                if source.get(attr):
                    what = f"<disk> <source {attr}>"
                    _xml_path(source.get(attr, ""), what, images, policy, resolved)
    for os_el in root.iterchildren("os"):
        for acpi in os_el.iterchildren("acpi"):
            for el in acpi.iterchildren("table"):
                if (el.text or "").strip():
                    _xml_path(el.text.strip(), "<os><acpi><table>", images, policy, resolved)
        for tag in ("kernel", "initrd", "dtb"):
            for el in os_el.iterchildren(tag):
                if (el.text or "").strip():
                    _xml_path(el.text.strip(), f"<os><{tag}>", images, policy, resolved)
        for el in os_el.iterchildren("loader"):
            if (el.text or "").strip():
                _xml_path(el.text.strip(), "<os><loader>", firmware, policy, resolved)
        for el in os_el.iterchildren("nvram"):
            if (el.text or "").strip():
                _xml_path(el.text.strip(), "<os><nvram>", firmware, policy, resolved)
            if el.get("template"):
                what = "<os><nvram template>"
                _xml_path(el.get("template", ""), what, firmware, policy, resolved)


def _xml_path(
    path: str,
    what: str,
    roots: tuple[str, ...],
    policy: Policy,
    resolved: dict[str, str] | None = None,
) -> None:
    try:
        check_path(path, XML_PARAM, roots, policy, resolved)
    except InvalidParams as exc:
        reason = exc.reason.removeprefix(f"{XML_PARAM}: ")
        raise _xml(f"{what}: {reason}") from None


def check(params: Any, root: etree._Element, policy: Policy, emulators: Iterable[str]) -> None:
    """VM.create's check: vmParams' own paths (named precisely), then the domain that would
    be defined (its tree), whether the engine's or built by hvagent; each path resolved once."""
    resolved: dict[str, str] = {}
    if isinstance(params, Mapping) and "xml" not in params:
        check_params(params, policy, resolved)
    check_domain(root, policy, emulators, resolved)


def host_emulators(capabilities_xml: str) -> frozenset[str]:
    """The emulator binaries libvirt's capabilities name for this host."""
    root = etree.fromstring(capabilities_xml.encode())
    return frozenset(
        (el.text or "").strip() for el in root.iterfind("guest/arch/emulator") if el.text
    )
