"""The per-VM families from QEMU-shaped bulk stats: names, labels, units (parsed back)."""

from __future__ import annotations

import time
import uuid

from prometheus_client.parser import text_string_to_metric_families

from agent.metrics.collector import render
from agent.metrics.snapshot import Snapshot
from agent.virt.port import DomainStats

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
STATS = {
    "state.state": 1,
    "cpu.time": 2_500_000_000,
    "balloon.current": 262144,
    "balloon.maximum": 524288,
    "balloon.rss": 1024,
    "balloon.major_fault": 7,
    "vcpu.current": 2,
    "vcpu.maximum": 2,
    "vcpu.0.state": 1,
    "vcpu.0.time": 1_000_000_000,
    "vcpu.1.state": 1,
    "vcpu.1.time": 500_000_000,
    "block.count": 1,
    "block.0.name": "vda",
    "block.0.rd.bytes": 4096,
    "block.0.wr.times": 3_000_000_000,
    "net.count": 1,
    "net.0.name": "vnet3",
    "net.0.rx.bytes": 99,
    "net.0.tx.drop": 2,
}


def samples(snap: Snapshot) -> dict[tuple[str, frozenset], float]:
    text = render(snap).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def test_exporter_names_labels_and_units():
    got = samples(Snapshot(time.monotonic(), (DomainStats(VM, "demo", STATS),)))
    base = {"domain": "demo", "uuid": str(VM)}

    def value(name, **labels):
        return got[(name, frozenset({**base, **labels}.items()))]

    assert value("libvirt_domain_info_vstate") == 1
    assert value("libvirt_domain_info_cpu_time_seconds_total") == 2.5
    assert value("libvirt_domain_info_memory_usage_bytes") == 262144 * 1024
    assert value("libvirt_domain_info_maximum_memory_bytes") == 524288 * 1024
    assert value("libvirt_domain_info_virtual_cpus") == 2
    assert value("libvirt_domain_memory_stats_rss_bytes") == 1024 * 1024
    assert value("libvirt_domain_memory_stats_major_fault_total") == 7
    assert value("libvirt_domain_vcpu_time_seconds_total", vcpu="1") == 0.5
    assert value("libvirt_domain_vcpu_state", vcpu="0") == 1
    assert value("libvirt_domain_block_stats_read_bytes_total", target_device="vda") == 4096
    assert value("libvirt_domain_block_stats_write_time_seconds_total", target_device="vda") == 3
    assert value("libvirt_domain_interface_stats_receive_bytes_total", target_device="vnet3") == 99
    assert value("libvirt_domain_interface_stats_transmit_drops_total", target_device="vnet3") == 2
    assert value("libvirt_domain_timed_out") == 0


def test_timed_out_round_flags_every_vm():
    snap = Snapshot(time.monotonic(), (DomainStats(VM, "demo", {"state.state": 3}),), True)
    got = samples(snap)
    key = ("libvirt_domain_timed_out", frozenset({"domain": "demo", "uuid": str(VM)}.items()))
    assert got[key] == 1
