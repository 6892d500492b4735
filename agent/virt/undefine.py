"""Undefining a domain so that nothing of it is left behind, on a libvirt thread."""

from __future__ import annotations

import libvirt

_EVERYTHING = (
    libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
    | libvirt.VIR_DOMAIN_UNDEFINE_MANAGED_SAVE
    | libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
    | libvirt.VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA
)
_FLAGS_REFUSED = (
    libvirt.VIR_ERR_NO_SUPPORT,
    libvirt.VIR_ERR_INVALID_ARG,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED,
)


def undefine_now(dom: libvirt.virDomain) -> None:
    """Undefine with the flags that also drop NVRAM, managed save, snapshot and checkpoint
    metadata; the plain call for drivers without them (the test driver); a domain already
    gone is not an error. Blocking: runs on a libvirt thread."""
    try:
        dom.undefineFlags(_EVERYTHING)
        return
    except libvirt.libvirtError as exc:
        code = exc.get_error_code()
        if code == libvirt.VIR_ERR_NO_DOMAIN:
            return
        if code not in _FLAGS_REFUSED:
            raise
    try:
        dom.undefine()
    except libvirt.libvirtError as exc:
        if exc.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
            raise
