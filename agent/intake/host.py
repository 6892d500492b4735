"""What a hosted-engine intake converter needs to know about this host, and its warnings.

`HostView` is handed to the pure converters (`ovf`, `vmconf`): where disk volumes live (VDSM's
file-domain layout under `image_root`), which machine types and CPU models the host's QEMU
offers (None: unknown, nothing is checked), and the values that replace the engine's host
placeholders in an EngineXml. `volume_exists` is the one file-system look-up a converter makes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent import wirevalues
from agent.errors import AgentError, InvalidParams, Unsupported

_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,99}$")


@dataclass(frozen=True)
class HostView:
    image_root: str = "/var/lib/hvagent/images"
    machines: frozenset[str] | None = None
    cpu_models: frozenset[str] | None = None
    default_machine: str | None = None
    host_uuid: str = ""
    os_name: str = ""
    os_version: str = ""
    exists: Callable[[str], bool] = field(default=os.path.exists, compare=False)

    def volume_path(self, domain: str, image: str, volume: str, param: str) -> str:
        return volume_path(self.image_root, domain, image, volume, param)

    def machine_supported(self, machine: str) -> bool:
        return self.machines is None or machine in self.machines


def volume_path(image_root: str, domain: Any, image: Any, volume: Any, param: str) -> str:
    """`<image_root>/<domainID>/images/<imageID>/<volumeID>` (VDSM's file-domain layout); ids
    are checked so a hostile id cannot leave the image root."""
    for what, value in (("domainID", domain), ("imageID", image), ("volumeID", volume)):
        if not isinstance(value, str) or not _ID.match(value):
            raise InvalidParams(f"{param}: bad {what} {wirevalues.echo(value, 80)}", param=param)
    return f"{image_root.rstrip('/')}/{domain}/images/{image}/{volume}"


def lun_path(guid: Any, param: str) -> str:
    """A direct LUN by its multipath id, as VDSM names it: `/dev/mapper/<GUID>`."""
    if not isinstance(guid, str) or not _ID.match(guid):
        raise InvalidParams(f"{param}: bad GUID {wirevalues.echo(guid, 80)}", param=param)
    return f"/dev/mapper/{guid}"


def warning(reason: str, param: str, **data: Any) -> dict[str, Any]:
    """One reply warning: what hvagent adapted or could not honour (code 75 shape)."""
    return Unsupported(reason, param=param, **data).to_wire()


class Warnings(list[dict[str, Any]]):
    def add(self, reason: str, param: str, **data: Any) -> None:
        self.append(warning(reason, param, **data))


def refuse(cls: type[AgentError], reason: str, param: str, **data: Any) -> AgentError:
    return cls(f"{param}: {reason}", param=param, **data)
