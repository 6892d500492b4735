"""hvagent-client's hosted-engine helpers: `VM create --ovf/--vm-conf/--ova FILE` and
`he-start`, which does what `hosted-engine --vm-start` does (reference hosted-engine.md §3.4):
ask the VM's status; destroy it first when it is Down or Paused; refuse when it exists in any
other state; then create it from the file.

The OVF and vm.conf files are read here and sent as text; for an OVA only its path is sent
(the daemon reads it on its own host). The VM id comes from `--vm-id`, else from the file:
the OVF's OperatingSystemSection id, or vm.conf's `vmId` (the XML's uuid when it has
`xmlBase64`). No libvirt here.
"""

from __future__ import annotations

import argparse
import tarfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from agent.errors import AgentError
from agent.intake import ovf, vmconf

Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class HeUsage(Exception):
    pass


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_mutually_exclusive_group()
    src.add_argument("--ovf", type=Path, help="VM create / he-start: from this oVirt OVF")
    src.add_argument("--vm-conf", type=Path, help="... from this hosted-engine vm.conf")
    src.add_argument("--ova", type=Path, help="... from this appliance OVA (path on the host)")
    p.add_argument("--vm-id", help="the VM id (default: the one inside the file)")


def given(args: argparse.Namespace) -> bool:
    return any(getattr(args, k) is not None for k in ("ovf", "vm_conf", "ova"))


def request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(vmID, vmParams) from the file option."""
    try:
        if args.ovf is not None:
            text = args.ovf.read_text()
            return args.vm_id or _ovf_id(text, str(args.ovf)), {"ovf": text}
        if args.vm_conf is not None:
            text = args.vm_conf.read_text()
            return args.vm_id or _conf_id(text, str(args.vm_conf)), {"vmConf": text}
        path = args.ova.resolve()
        return args.vm_id or _ova_id(path), {"ova": str(path)}
    except (OSError, UnicodeDecodeError) as exc:
        raise HeUsage(f"cannot read the file: {exc}") from None


def _ovf_id(text: str, name: str) -> str:
    try:
        root = ovf.load(text)
        content = ovf.child(root, "Content")
        if content is None:
            raise HeUsage(f"{name}: no <Content> in the OVF")
        return str(ovf.read_vm_id(content, "OVF"))
    except AgentError as exc:
        raise HeUsage(f"{name}: {exc.reason}; give --vm-id") from None


def _conf_id(text: str, name: str) -> str:
    try:
        params = vmconf.parse(text)
    except AgentError as exc:
        raise HeUsage(f"{name}: {exc.reason}") from None
    vm_id = vmconf.xml_uuid(params["xml"]) if "xml" in params else params.get("vmId")
    if not vm_id:
        raise HeUsage(f"{name}: no vmId; give --vm-id")
    return str(vm_id)


def _ova_id(path: Path) -> str:
    try:
        with tarfile.open(path, "r|gz") as tar:
            for member in tar:
                if member.name.lstrip("./").startswith("master/") and member.name.endswith(".ovf"):
                    f = tar.extractfile(member)
                    assert f is not None
                    return _ovf_id(f.read().decode("utf-8", "replace"), str(path))
    except (OSError, tarfile.TarError) as exc:
        raise HeUsage(f"{path}: not a readable OVA: {exc}") from None
    raise HeUsage(f"{path}: no OVF in the archive; give --vm-id")


async def he_start(call: Call, vm_id: str, vm_params: dict[str, Any]) -> dict[str, Any]:
    """The JSON-RPC reply to print: the create result, or the error that stopped it."""
    reply = await call("VM.getStats", {"vmID": vm_id})
    if "error" in reply:
        if reply["error"].get("code") != 1:  # 1: no such VM -> create it
            return reply
    else:
        status = reply["result"][0].get("status")
        if status in ("Down", "Paused"):
            destroyed = await call("VM.destroy", {"vmID": vm_id})
            if "error" in destroyed:
                return destroyed
        else:
            reason = f"VM exists and its status is {status}"
            return {
                "error": {
                    "code": 4,
                    "message": "Virtual machine already exists",
                    "data": {"reason": reason, "vmId": vm_id, "status": status},
                }
            }
    return await call("VM.create", {"vmID": vm_id, "vmParams": vm_params})
