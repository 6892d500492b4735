"""The sampler keeps the last numbers, flagged timed out, when libvirt's bulk stats hang."""

from __future__ import annotations

import asyncio
import uuid

from agent.metrics.sampler import Sampler
from agent.virt.port import DomainStats

VM = uuid.uuid4()


class Port:
    def __init__(self) -> None:
        self.hang = False
        self.calls = 0
        self.release = asyncio.Event()

    async def all_domain_stats(self) -> list[DomainStats]:
        self.calls += 1
        if self.hang:
            await self.release.wait()  # a domain stuck in a QEMU monitor call
        return [DomainStats(VM, "demo", {"state.state": 1})]


async def test_stuck_round_keeps_previous_snapshot_flagged():
    port = Port()
    sampler = Sampler(port, interval_s=1, timeout_s=0.05)  # type: ignore[arg-type]
    first = await sampler.sample_once()
    assert not first.timed_out and first.domains[0].vm_id == VM
    assert b'libvirt_domain_timed_out{domain="demo"' in sampler.rendered
    port.hang = True
    second = await sampler.sample_once()
    assert second.timed_out and second.taken_at == first.taken_at
    assert second.domains == first.domains
    assert b"libvirt_domain_timed_out" in sampler.rendered and b"} 1.0" in sampler.rendered
    # the next round waits for the same stuck call rather than queueing another
    third = await sampler.sample_once()
    assert third.timed_out and port.calls == 2
    port.release.set()
    fourth = await sampler.sample_once()
    assert not fourth.timed_out and fourth.taken_at > first.taken_at and port.calls == 2


async def test_each_round_carries_vm_stats_with_two_sample_rates():
    from agent.domxml.live import Devices, NicFacts
    from agent.vmstats import VmFacts

    class Counting:
        def __init__(self) -> None:
            self.round = 0

        async def all_domain_stats(self) -> list[DomainStats]:
            self.round += 1
            n = self.round
            stats = {"cpu.time": 10**9 * n, "cpu.user": 10**8 * n, "cpu.system": 10**8 * n}
            stats |= {"net.count": 1, "net.0.name": "vnet3", "net.0.rx.bytes": 100 * n}
            return [DomainStats(VM, "demo", stats)]

    facts = {VM: VmFacts(Devices(nics=(NicFacts("vnet3", "52:54:00:00:00:03", "virtio"),)), 64)}
    sampler = Sampler(Counting(), interval_s=1, timeout_s=5, facts=lambda: facts)  # type: ignore[arg-type]
    first = await sampler.sample_once()
    assert first.vm_stats[VM]["cpuActual"] is False
    assert first.vm_stats[VM]["network"]["vnet3"]["macAddr"] == "52:54:00:00:00:03"
    second = await sampler.sample_once()
    frag = second.vm_stats[VM]
    assert frag["cpuActual"] is True and frag["network"]["vnet3"]["rx"] == "200"
    assert float(frag["cpuSys"]) > 0 and frag["monitorResponse"] == "0"


async def test_a_timed_out_round_marks_every_vm_unresponsive():
    port = Port()
    sampler = Sampler(port, interval_s=1, timeout_s=0.05)  # type: ignore[arg-type]
    assert (await sampler.sample_once()).vm_stats[VM]["monitorResponse"] == "0"
    port.hang = True
    assert (await sampler.sample_once()).vm_stats[VM]["monitorResponse"] == "-1"
    port.release.set()
    assert (await sampler.sample_once()).vm_stats[VM]["monitorResponse"] == "0"
