"""<channel>: virtio-serial channels; the QEMU guest agent's is always present.

Unix channels other than the guest agent's are hvagent's to drain (runtime/channels/):
`bind_all` points each at a socket QEMU binds under hvagent's channel directory,
`<dir>/<vmId>/<name>` (or a hash of the name when that path would not fit a socket address
or the name is not a plain file name), replacing any path the request named; `bound` reads
them back from a domain's XML (recovery, adoption). The guest agent channel keeps libvirt's
own socket: libvirt is its client.
"""

from __future__ import annotations

import hashlib
import re
import uuid

from lxml import etree

from agent.domxml.builder import E
from agent.spec import GUEST_AGENT_CHANNEL, ChannelSpec

SUN_PATH_MAX = 107  # bytes of a Unix socket path, without the NUL
PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")


def build_unix(name: str) -> etree._Element:
    # No <source path>: libvirt picks a per-domain socket under its own channel directory
    # (bind_all gives hvagent's channels theirs).
    return E.channel(E.target(type="virtio", name=name), type="unix")


def build(channel: ChannelSpec) -> etree._Element:
    if channel.kind == "unix":
        return build_unix(channel.name)
    return E.channel(E.target(type="virtio", name=channel.name), type=channel.kind)


def socket_path(directory: str, vm_id: uuid.UUID, name: str) -> str:
    """Where QEMU binds channel `name` of `vm_id`: always the same for the same inputs."""
    base = f"{directory.rstrip('/')}/{vm_id}/"
    if PLAIN_NAME.fullmatch(name) and len((base + name).encode()) <= SUN_PATH_MAX:
        return base + name
    return base + hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def drained(el: etree._Element) -> str | None:
    """The name of a channel hvagent drains (unix, virtio, not the guest agent's), else None."""
    target = el.find("target")
    if el.get("type") != "unix" or target is None or target.get("type") != "virtio":
        return None
    name = target.get("name")
    return None if not name or name == GUEST_AGENT_CHANNEL else name


def bind_all(dom: etree._Element, directory: str) -> list[str]:
    """Give every drained channel of the parsed <domain> its socket (in place); returns
    their names. Names are checked by the caller (intake)."""
    vm_id = uuid.UUID(dom.findtext("uuid", ""))
    names = []
    for el in dom.iterfind("devices/channel"):
        name = drained(el)
        if name is None:
            continue
        for old in el.findall("source"):
            el.remove(old)
        el.insert(0, E.source(mode="bind", path=socket_path(directory, vm_id, name)))
        names.append(name)
    return names


def bound(dom: etree._Element) -> tuple[tuple[str, str], ...]:
    """(name, socket path) of each drained channel QEMU binds, as this XML says."""
    out = []
    for el in dom.iterfind("devices/channel"):
        name = drained(el)
        source = el.find("source")
        if name is not None and source is not None and source.get("mode", "bind") == "bind":
            path = source.get("path")
            if path:
                out.append((name, path))
    return tuple(out)
