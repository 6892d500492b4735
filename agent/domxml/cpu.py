"""<cpu>: model or host mode, features, topology, guest NUMA cells."""

from __future__ import annotations

from lxml import etree

from agent.domxml.builder import E
from agent.spec import CpuSpec


def build(cpu: CpuSpec) -> etree._Element:
    el = E.cpu()
    if cpu.mode == "custom":
        el.set("mode", "custom")
        el.set("match", "exact")
        el.append(E.model(cpu.model or "", fallback="allow"))
    elif cpu.mode:
        el.set("mode", cpu.mode)
    if cpu.topology:
        sockets, cores, threads = cpu.topology
        el.append(E.topology(sockets=str(sockets), cores=str(cores), threads=str(threads)))
    for policy, name in cpu.features:
        el.append(E.feature(policy=policy, name=name))
    if cpu.numa_cells:
        el.append(
            E.numa(
                *(
                    E.cell(id=str(i), cpus=cpus, memory=str(mib * 1024), unit="KiB")
                    for i, cpus, mib in cpu.numa_cells
                )
            )
        )
    return el
