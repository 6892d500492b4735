"""Engine XML, element by element: every element must be one libvirt's domain schema defines
under its parent, and every attribute one the schema defines for that element; attributes
that name a host resource are checked against the host-access policy like paths elsewhere.

The allow-list is `domain_attrs.txt`: one line per `parent/element` (local names; the root is
`/domain`) with its attributes, derived from libvirt's RELAX NG schemas by
scripts/gen_domain_attrs.py and committed, so a newer libvirt's additions reach the host only
once reviewed. On top of the schema (hostaccess.py checks the rest: emulator, qemu:, host
devices, chardev files, disk and boot paths):
- REFUSED: attributes and elements that reach the host with no policy to hold them;
- PATHS: attributes (and the nvdimm `<path>`) naming a host file or socket, which must lie
  under the chardev roots (sockets, output files) or the image roots (files QEMU reads);
- `<metadata>`'s children are not looked at (ovirt-vm:, ovirt-tune:, hvagent's own); any
  other namespaced element or attribute is refused.
A refusal is -32602 with `data.param` `vmParams.xml` and the element path (`/domain/devices/
disk[2]/source`) and attribute in `data.reason`. Pure (paths resolve through hostaccess).
"""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from agent import wirevalues
from agent.config import HostAccessConfig as Policy
from agent.errors import InvalidParams
from agent.intake.hostaccess import XML_PARAM, check_path, refused


def _load() -> dict[str, frozenset[str]]:
    table = {}
    for line in (Path(__file__).with_name("domain_attrs.txt")).read_text().splitlines():
        key, *attrs = line.split()
        table[key] = frozenset(attrs)
    return table


ALLOWED = _load()
_HOSTDEV = "it hands a host device to the VM ([host_access] allow_hostdev)"
# (parent/element, attribute or None for the element): why it is refused.
REFUSED = {
    ("devices/disk", "rawio"): "it gives QEMU CAP_SYS_RAWIO on the host",
    ("devices/hostdev", "rawio"): "it gives QEMU CAP_SYS_RAWIO on the host",
    ("disk/mirror", None): "a block-job mirror is libvirt's own state, not a definition",
    ("domain/bootloader", None): "it runs a host program",
    ("domain/bootloader_args", None): "it runs a host program",
}
REFUSED_UNLESS_HOSTDEV = {("graphics/gl", "rendernode"), ("video/driver", "rendernode")}
CHARDEV, IMAGE = "chardev", "image"
PATHS = {
    ("source/host", "socket"): CHARDEV,  # network disk over a host Unix socket
    ("interface/source", "path"): CHARDEV,  # vhost-user socket
    ("backend/source", "path"): CHARDEV,  # <rng> egd / <tpm> emulator chardev
    ("redirdev/source", "path"): CHARDEV,
    ("smartcard/source", "path"): CHARDEV,
    ("devices/audio", "path"): CHARDEV,  # the file audio backend writes there
    ("source/config", "file"): IMAGE,  # a network disk's config file, read by QEMU
    ("source/reservations", "path"): CHARDEV,
}

_SPECIAL = {k for k, _ in (*REFUSED, *REFUSED_UNLESS_HOSTDEV, *PATHS)} | {"source/path"}


def check(root: etree._Element, policy: Policy) -> None:
    """Refuse an element or attribute outside the allow-list (see the module doc)."""
    _element(root, "", policy)


def _element(el: etree._Element, parent: str, policy: Policy) -> None:
    name = el.tag
    key = f"{parent}/{name}"
    allowed = ALLOWED.get(key)
    if allowed is None or (key, None) in REFUSED:
        why = REFUSED.get((key, None), "libvirt's domain schema has no such element there")
        raise _refuse(el, f"element {wirevalues.echo(name, 64)} is not allowed: {why}")
    attrib = el.attrib
    if attrib and not allowed.issuperset(attrib):
        attr = next(a for a in attrib if a not in allowed)
        shown = wirevalues.echo(attr, 64)
        raise _refuse(el, f"attribute {shown} is not allowed on <{name}> (reviewed "
                      "attributes only; see README, Host access)")  # fmt: skip
    if key in _SPECIAL:
        _special(el, key, policy)
    if name == "metadata":
        return
    for child in el.iterchildren(tag=etree.Element):  # not comments or PIs
        if child.tag[0] == "{":
            local = wirevalues.echo(etree.QName(child).localname, 64)
            raise _refuse(child, f"namespaced element {local} is allowed only in <metadata>")
        _element(child, name, policy)


def _special(el: etree._Element, key: str, policy: Policy) -> None:
    """The checks beyond the schema for the few elements that have one."""
    for attr, value in el.attrib.items():
        if (key, attr) in REFUSED:
            raise _refuse(el, f"attribute {attr} is not allowed: {REFUSED[(key, attr)]}")
        if (key, attr) in REFUSED_UNLESS_HOSTDEV and not policy.allow_hostdev:
            raise _refuse(el, f"attribute {attr} is not allowed: {_HOSTDEV}")
        kind = PATHS.get((key, attr))
        if kind and value:
            _path(el, attr, value, kind, policy)
    if key == "source/path" and el.getparent().getparent().tag == "memory":
        _path(el, None, (el.text or "").strip(), IMAGE, policy)  # nvdimm / pmem backing file


def _path(el: etree._Element, attr: str | None, value: str, kind: str, policy: Policy) -> None:
    roots = policy.chardev_roots if kind == CHARDEV else policy.image_roots
    try:
        check_path(value, XML_PARAM, roots, policy)
    except InvalidParams as exc:
        what = f"attribute {attr}" if attr else "text"
        raise _refuse(el, f"{what}: {exc.reason.removeprefix(XML_PARAM + ': ')}") from None


def _refuse(el: etree._Element, reason: str) -> InvalidParams:
    path = el.getroottree().getpath(el)
    if len(path) > 200:
        path = "..." + path[-197:]
    return refused(XML_PARAM, f"{path}: {reason}")
