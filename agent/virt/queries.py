"""Whole-host questions to libvirt, run on a libvirt thread: host facts and bulk domain stats.

Plain blocking functions over a connection; the adapter runs them on its executors.
"""

from __future__ import annotations

import socket
import uuid

import libvirt

from agent.virt.port import DomainStats, HostFacts


def _version(v: int) -> str:
    return f"{v // 1_000_000}.{v // 1000 % 1000}.{v % 1000}"


def host_facts(conn: libvirt.virConnect) -> HostFacts:
    model, mem, cpus, mhz, nodes, sockets, cores, threads = conn.getInfo()
    return HostFacts(
        hostname=socket.gethostname(),
        capabilities_xml=conn.getCapabilities(),
        cpu_model=model,
        memory_mib=mem,
        cpus=cpus,
        mhz=mhz,
        numa_nodes=nodes,
        sockets_per_node=sockets,
        cores_per_socket=cores,
        threads_per_core=threads,
        libvirt_version=_version(conn.getLibVersion()),
        hypervisor_version=_version(conn.getVersion()),
        hypervisor_type=conn.getType(),
        domain_capabilities_xml=_domain_capabilities(conn),
    )


def _domain_capabilities(conn: libvirt.virConnect) -> str:
    try:
        return conn.getDomainCapabilities(None, "x86_64", None, None, 0)
    except libvirt.libvirtError:
        return ""  # drivers without it (the test driver)


def domain_stats(conn: libvirt.virConnect) -> list[DomainStats]:
    """virConnectGetAllDomainStats with NOWAIT where the driver supports it."""
    flags = getattr(libvirt, "VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT", 0)
    try:
        raw = conn.getAllDomainStats(0, flags)
    except libvirt.libvirtError:
        if not flags:
            raise
        raw = conn.getAllDomainStats(0, 0)  # NOWAIT unsupported by this driver
    return [DomainStats(uuid.UUID(d.UUIDString()), d.name(), dict(s)) for d, s in raw]
