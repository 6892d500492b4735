"""The one table from libvirt errors to AgentErrors.

Every adapter method raises only AgentErrors, built here with the libvirt code, domain and
message in `data.libvirt` so the engine and the log keep libvirt's own words.
"""

from __future__ import annotations

import libvirt

from agent import errors

_BY_CODE: dict[int, type[errors.AgentError]] = {
    libvirt.VIR_ERR_NO_DOMAIN: errors.NoSuchVM,
    libvirt.VIR_ERR_OPERATION_INVALID: errors.WrongState,
    libvirt.VIR_ERR_NO_SUPPORT: errors.Unsupported,
    libvirt.VIR_ERR_ARGUMENT_UNSUPPORTED: errors.Unsupported,
    libvirt.VIR_ERR_AGENT_UNRESPONSIVE: errors.GuestAgentUnresponsive,
    libvirt.VIR_ERR_OPERATION_TIMEOUT: errors.OperationTimeout,
}

_CONNECTION_DOMAINS = {libvirt.VIR_FROM_REMOTE, libvirt.VIR_FROM_RPC}
_CONNECTION_CODES = {
    libvirt.VIR_ERR_SYSTEM_ERROR,
    libvirt.VIR_ERR_INTERNAL_ERROR,
    libvirt.VIR_ERR_NO_CONNECT,
    libvirt.VIR_ERR_INVALID_CONN,
}


def translate(
    exc: libvirt.libvirtError,
    fallback: type[errors.AgentError] = errors.HypervisorError,
    **data: object,
) -> errors.AgentError:
    """The AgentError for `exc`; `fallback` when the code has no more specific class."""
    code, domain = exc.get_error_code(), exc.get_error_domain()
    if (domain in _CONNECTION_DOMAINS and code in _CONNECTION_CODES) or code in (
        libvirt.VIR_ERR_NO_CONNECT,
        libvirt.VIR_ERR_INVALID_CONN,
    ):
        cls: type[errors.AgentError] = errors.HypervisorUnavailable
    else:
        cls = _BY_CODE.get(code, fallback)
    message = exc.get_error_message() or str(exc)
    return cls(
        message,
        libvirt={"code": code, "domain": domain, "message": message},
        **data,
    )


def is_not_running(exc: libvirt.libvirtError) -> bool:
    """The domain is gone or not active: what destroy treats as already done.

    The qemu driver says OPERATION_INVALID; the test driver says INTERNAL_ERROR
    (shared/design/ANCHORS.md A.8).
    """
    code = exc.get_error_code()
    return code in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_OPERATION_INVALID) or (
        code == libvirt.VIR_ERR_INTERNAL_ERROR and "not running" in (exc.get_error_message() or "")
    )
