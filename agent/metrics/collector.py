"""A prometheus-client Collector over the sampler's latest Snapshot (no libvirt on scrape).

The per-VM text is rendered once per sampling round, on a worker thread, and a scrape
serves those bytes (`Sampler.rendered`): at 1000 QEMU VMs that is ~40 000 lines, far too
slow to rebuild on every scrape on the event loop (bench/scrape.py).

Names follow the inovex prometheus-libvirt-exporter family (reference/peers.md §4) so
existing dashboards work: labels `domain` (libvirt name) and `uuid` on every series, plus
`target_device` (disks, NICs) and `vcpu`. `hvagent_sample_age_seconds` tells how old the
numbers are; `libvirt_domain_timed_out` is 1 for every VM of a round that hit the time box.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from agent.metrics.snapshot import Snapshot

KIB = 1024
NS = 1e-9

# (metric name without _total, help, bulk-stats key, scale, counter?)
_INFO = [
    ("libvirt_domain_info_maximum_memory_bytes", "Maximum memory", "balloon.maximum", KIB, False),
    ("libvirt_domain_info_memory_usage_bytes", "Memory in use", "balloon.current", KIB, False),
    ("libvirt_domain_info_virtual_cpus", "Virtual CPUs", "vcpu.current", 1, False),
    ("libvirt_domain_info_cpu_time_seconds", "CPU time used", "cpu.time", NS, True),
    ("libvirt_domain_info_vstate", "libvirt domain state code", "state.state", 1, False),
]
_MEMORY = [
    ("swap_in_bytes", "balloon.swap_in", KIB, False),
    ("swap_out_bytes", "balloon.swap_out", KIB, False),
    ("unused_bytes", "balloon.unused", KIB, False),
    ("available_bytes", "balloon.available", KIB, False),
    ("usable_bytes", "balloon.usable", KIB, False),
    ("rss_bytes", "balloon.rss", KIB, False),
    ("current_balloon_bytes", "balloon.current", KIB, False),
    ("disk_caches_bytes", "balloon.disk_caches", KIB, False),
    ("major_fault", "balloon.major_fault", 1, True),
    ("minor_fault", "balloon.minor_fault", 1, True),
]
_BLOCK = [
    ("read_bytes", "rd.bytes", 1),
    ("read_requests", "rd.reqs", 1),
    ("read_time_seconds", "rd.times", NS),
    ("write_bytes", "wr.bytes", 1),
    ("write_requests", "wr.reqs", 1),
    ("write_time_seconds", "wr.times", NS),
    ("flush_requests", "fl.reqs", 1),
    ("flush_time_seconds", "fl.times", NS),
]
# libvirt keys: net.N.rx.bytes, .rx.pkts, .rx.errs, .rx.drop
_NET_KEYS = {"bytes": "bytes", "packets": "pkts", "errors": "errs", "drops": "drop"}


def _family(name: str, help_: str, labels: list[str], counter: bool) -> Metric:
    cls = CounterMetricFamily if counter else GaugeMetricFamily
    return cls(name, help_, labels=labels)


class _SnapshotCollector(Collector):
    """A collector over whatever snapshot `snapshot()` returns when collected."""

    def __init__(self, snapshot: Callable[[], Snapshot]) -> None:
        self._snapshot = snapshot

    def describe(self) -> list[Metric]:
        return []  # no collect() at registration time


class SampleAgeCollector(_SnapshotCollector):
    """How old the per-VM numbers are: computed at scrape time, unlike the rendered text."""

    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        age = time.monotonic() - snap.taken_at if snap.taken_at else float("nan")
        yield GaugeMetricFamily(
            "hvagent_sample_age_seconds", "Age of the libvirt bulk-stats sample", value=age
        )
        yield GaugeMetricFamily(
            "hvagent_sample_duration_seconds",
            "How long the last libvirt bulk-stats round took",
            value=snap.duration_s,
        )


def render(snapshot: Snapshot) -> bytes:
    """The per-VM families of one snapshot as exposition text (run once per round, off-loop)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DomainStatsCollector(lambda: snapshot))
    return generate_latest(registry)


class DomainStatsCollector(_SnapshotCollector):
    def collect(self) -> Iterator[Metric]:
        snap = self._snapshot()
        base = ["domain", "uuid"]
        timed_out = GaugeMetricFamily(
            "libvirt_domain_timed_out", "1 when the last stats round hit its time box", labels=base
        )
        info = [(_family(n, h, base, c), k, s) for n, h, k, s, c in _INFO]
        mem = [
            (_family(f"libvirt_domain_memory_stats_{n}", f"Guest memory {n}", base, c), k, s)
            for n, k, s, c in _MEMORY
        ]
        dev = [*base, "target_device"]
        block = [
            (CounterMetricFamily(f"libvirt_domain_block_stats_{n}", f"Disk {n}", labels=dev), k, s)
            for n, k, s in _BLOCK
        ]
        net = [
            (
                CounterMetricFamily(f"libvirt_domain_interface_stats_{d}_{w}", f"NIC {d} {w}",
                                    labels=dev),
                f"{'rx' if d == 'receive' else 'tx'}.{_NET_KEYS[w]}",
            )
            for d in ("receive", "transmit")
            for w in ("bytes", "packets", "errors", "drops")
        ]  # fmt: skip
        vl = [*base, "vcpu"]
        vcpu_time = CounterMetricFamily("libvirt_domain_vcpu_time_seconds", "vCPU time", labels=vl)
        vcpu_wait = CounterMetricFamily(
            "libvirt_domain_vcpu_wait_seconds", "vCPU wait time", labels=vl
        )
        vcpu_state = GaugeMetricFamily("libvirt_domain_vcpu_state", "vCPU state", labels=vl)
        vcpu_current = GaugeMetricFamily("libvirt_domain_vcpu_current", "vCPUs", labels=base)
        vcpu_max = GaugeMetricFamily("libvirt_domain_vcpu_maximum", "Max vCPUs", labels=base)
        flag = 1 if snap.timed_out else 0
        for d in snap.domains:
            st = d.stats
            lab = [d.name, str(d.vm_id)]
            timed_out.add_metric(lab, flag)
            for fam, key, scale in (*info, *mem):
                if key in st:
                    fam.add_metric(lab, st[key] * scale)
            if "vcpu.current" in st:
                vcpu_current.add_metric(lab, st["vcpu.current"])
            if "vcpu.maximum" in st:
                vcpu_max.add_metric(lab, st["vcpu.maximum"])
            for i in range(int(st.get("vcpu.maximum", st.get("vcpu.current", 0)))):
                v = [*lab, str(i)]
                if f"vcpu.{i}.time" in st:
                    vcpu_time.add_metric(v, st[f"vcpu.{i}.time"] * NS)
                if f"vcpu.{i}.wait" in st:
                    vcpu_wait.add_metric(v, st[f"vcpu.{i}.wait"] * NS)
                if f"vcpu.{i}.state" in st:
                    vcpu_state.add_metric(v, st[f"vcpu.{i}.state"])
            for i in range(int(st.get("block.count", 0))):
                p = f"block.{i}."
                v = [*lab, str(st.get(p + "name", i))]
                for fam, key, scale in block:
                    if p + key in st:
                        fam.add_metric(v, st[p + key] * scale)
            for i in range(int(st.get("net.count", 0))):
                p = f"net.{i}."
                v = [*lab, str(st.get(p + "name", i))]
                for fam, key in net:
                    if p + key in st:
                        fam.add_metric(v, st[p + key])
        yield timed_out
        for fam, _, _ in (*info, *mem, *block):
            yield fam
        for fam, _ in net:
            yield fam
        yield from (vcpu_current, vcpu_max, vcpu_state, vcpu_time, vcpu_wait)
