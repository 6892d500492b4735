"""Running-VM stats in VDSM's shape (reference/vdsm.md §7.2) from libvirt bulk stats.

Pure: `fragment` turns two consecutive bulk-stats samples of one domain (previous, current,
the seconds between them) plus the device facts read from its XML into the fields VM.getStats
reports; `for_round` does it for every domain of a sampling round and decides
`monitorResponse`. The sampler calls `for_round` once per round on a worker thread, so the
verbs only copy the result.

Values are strings as VDSM writes them (floats with two decimals, ints in decimal), except
the structured `disks`, `network`, `balloonInfo`, `memoryStats` (whose per-second counters are
ints, as VDSM's) and the booleans. Disks and NICs are matched by name (block.N.name,
net.N.name), never by index across samples: hot-plug reorders them.

monitorResponse is "-1" when the VM's numbers are stale: the round timed out (libvirt did
not answer within `[metrics] sample_timeout_s`, e.g. QEMU stopped answering its monitor), or
the keys only QEMU's monitor provides (per-disk request counters, detailed balloon stats)
were present once and have been missing for longer than `stale_after` seconds (libvirt
skips them while another job holds a stuck monitor). A VM that never showed those keys
(the test driver, a VM without disks or balloon) is never flagged by the second rule.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.domxml.live import Devices

Stats = Mapping[str, Any]

_FAST_NICS = ("virtio", "e1000", "e1000e")
_DEFAULT_PERIOD_US = 100_000  # QEMU's CFS period when <cputune> sets none


def f2(value: float) -> str:
    """A sampled float as VDSM writes it."""
    return f"{value:.2f}"


def index(stats: Stats, group: str) -> dict[str, int]:
    """name -> index of one bulk-stats group ("block", "net") in one sample."""
    out = {}
    for i in range(int(stats.get(f"{group}.count", 0))):
        name = stats.get(f"{group}.{i}.name")
        if isinstance(name, str):
            out[name] = i
    return out


def _delta(cur: Stats, prev: Stats, key: str) -> float:
    return float(cur.get(key, 0)) - float(prev.get(key, 0))


def cpu(prev: Stats | None, cur: Stats, interval_s: float) -> dict[str, Any]:
    out: dict[str, Any] = {"cpuUser": "0.00", "cpuSys": "0.00", "cpuActual": False}
    out["cpuUsage"] = str(int(cur.get("cpu.user", 0)) + int(cur.get("cpu.system", 0)))
    keys = ("cpu.time", "cpu.user", "cpu.system")
    if prev is None or interval_s <= 0 or not all(k in cur and k in prev for k in keys):
        return out
    interval_ns = interval_s * 1e9
    kernel_user = _delta(cur, prev, "cpu.user") + _delta(cur, prev, "cpu.system")
    total = _delta(cur, prev, "cpu.time")
    out["cpuSys"] = f2(max(0.0, 100 * kernel_user / interval_ns))
    out["cpuUser"] = f2(max(0.0, 100 * (total - kernel_user) / interval_ns))
    out["cpuActual"] = True
    return out


def memory(
    prev: Stats | None, cur: Stats, interval_s: float, devices: Devices, memory_mib: int
) -> dict[str, Any]:
    mem: dict[str, Any] = {}
    usage = "0"
    if "balloon.available" in cur:
        total = int(cur["balloon.available"])
        unused = int(cur.get("balloon.unused", 0))
        caches = int(cur.get("balloon.disk_caches", 0))
        free = unused + caches
        mem = {
            "mem_total": str(total),
            "mem_unused": str(unused),
            "mem_free": str(free),
            "mem_buffers": "0",  # libvirt's balloon stats have no buffers figure
            "mem_cached": str(caches),
        }
        if total > 0:
            usage = str(max(0, int(100 * (total - free) / total)))
        rates = {
            "swap_in": "balloon.swap_in",
            "swap_out": "balloon.swap_out",
            "majflt": "balloon.major_fault",
            "minflt": "balloon.minor_fault",
        }
        for name, key in rates.items():
            ok = prev is not None and interval_s > 0 and key in prev and key in cur
            mem[name] = max(0, round(_delta(cur, prev, key) / interval_s)) if ok else 0  # type: ignore[arg-type]
        mem["pageflt"] = mem["majflt"] + mem["minflt"]
    balloon: dict[str, Any] = {}
    if devices.balloon and "balloon.current" in cur:
        maximum = int(cur.get("balloon.maximum", memory_mib * 1024))
        balloon = {
            "balloon_max": str(maximum),
            "balloon_min": str(devices.min_guaranteed_mib * 1024),
            "balloon_cur": str(int(cur["balloon.current"])),
            "balloon_target": str(maximum),  # no VM.setBalloonTarget yet: the maximum
            "ballooning_enabled": True,
        }
    return {"memUsage": usage, "memoryStats": mem, "balloonInfo": balloon}


def _disk(
    prev: Stats | None, p: int | None, cur: Stats, c: int, interval_s: float
) -> dict[str, str]:
    k = f"block.{c}."
    out = {
        "readOps": str(int(cur.get(k + "rd.reqs", 0))),
        "writeOps": str(int(cur.get(k + "wr.reqs", 0))),
        "readBytes": str(int(cur.get(k + "rd.bytes", 0))),
        "writtenBytes": str(int(cur.get(k + "wr.bytes", 0))),
        # the image's size on the host (physical), else the highest written offset
        "truesize": str(int(cur.get(k + "physical") or cur.get(k + "allocation", 0))),
        "apparentsize": str(int(cur.get(k + "capacity", 0))),
        "readRate": "0.00",
        "writeRate": "0.00",
        "readLatency": "0",
        "writeLatency": "0",
        "flushLatency": "0",
    }
    if prev is None or p is None:
        return out
    pk = f"block.{p}."
    if interval_s > 0:
        for name, mode in (("readRate", "rd"), ("writeRate", "wr")):
            if k + mode + ".bytes" in cur and pk + mode + ".bytes" in prev:
                rate = float(cur[k + mode + ".bytes"]) - float(prev[pk + mode + ".bytes"])
                out[name] = f2(max(0.0, rate / interval_s))
    for name, mode in (("readLatency", "rd"), ("writeLatency", "wr"), ("flushLatency", "fl")):
        try:
            ops = float(cur[f"{k}{mode}.reqs"]) - float(prev[f"{pk}{mode}.reqs"])
            spent = float(cur[f"{k}{mode}.times"]) - float(prev[f"{pk}{mode}.times"])
        except KeyError:
            continue
        if ops > 0:
            out[name] = f2(max(0.0, spent / ops))
    return out


def disks(
    prev: Stats | None, cur: Stats, interval_s: float, devices: Devices
) -> dict[str, dict[str, str]]:
    """Per target dev: every disk the XML has, and any the sample has besides (hot-plug)."""
    now_at = index(cur, "block")
    before = index(prev, "block") if prev is not None else {}
    image = {d.dev: d.image_id for d in devices.disks}
    names = list(dict.fromkeys([*(d.dev for d in devices.disks), *now_at]))
    out = {}
    for name in names:
        c = now_at.get(name)
        entry = _disk(prev, before.get(name), cur, c, interval_s) if c is not None else None
        if entry is None:
            entry = _disk(None, None, {}, 0, interval_s)
        if image.get(name):
            entry["imageID"] = image[name]  # type: ignore[assignment]
        out[name] = entry
    return out


def network(cur: Stats, devices: Devices, sample_time: float) -> dict[str, dict[str, Any]]:
    """Per interface (target dev) in the sample; MAC and model from the XML's facts."""
    nics = {n.dev: n for n in devices.nics if n.dev}
    out = {}
    for name, i in index(cur, "net").items():
        k = f"net.{i}."
        nic = nics.get(name)
        model = nic.model if nic is not None else ""
        out[name] = {
            "name": name,
            "macAddr": nic.mac if nic is not None else "",
            "speed": "1000" if model in _FAST_NICS else "100",
            "state": "unknown",
            "rx": str(int(cur.get(k + "rx.bytes", 0))),
            "tx": str(int(cur.get(k + "tx.bytes", 0))),
            "rxErrors": str(int(cur.get(k + "rx.errs", 0))),
            "rxDropped": str(int(cur.get(k + "rx.drop", 0))),
            "txErrors": str(int(cur.get(k + "tx.errs", 0))),
            "txDropped": str(int(cur.get(k + "tx.drop", 0))),
            "sampleTime": sample_time,
        }
    return out


def fragment(
    prev: Stats | None,
    cur: Stats,
    interval_s: float,
    devices: Devices,
    *,
    memory_mib: int = 0,
    sample_time: float = 0.0,
) -> dict[str, Any]:
    """VM.getStats' sampled fields for one domain. `prev` is None for its first sample."""
    out = cpu(prev, cur, interval_s)
    if "vcpu.current" in cur:
        out["vcpuCount"] = str(int(cur["vcpu.current"]))
    quota, period = devices.vcpu_quota, devices.vcpu_period
    out["vcpuQuota"] = str(quota) if quota else "-1"
    out["vcpuPeriod"] = str(period) if period else str(_DEFAULT_PERIOD_US)
    out.update(memory(prev, cur, interval_s, devices, memory_mib))
    out["disks"] = disks(prev, cur, interval_s, devices)
    out["network"] = network(cur, devices, sample_time)
    return out


def monitor_answered(stats: Stats) -> bool:
    """Whether this sample holds keys only QEMU's monitor provides (see module docstring)."""
    if "balloon.rss" in stats or "balloon.last-update" in stats:
        return True
    return any(k.endswith(".rd.reqs") for k in stats if k.startswith("block."))


@dataclass
class History:
    """What `for_round` keeps between rounds (owned by the sampler's worker hop)."""

    prev: dict[uuid.UUID, tuple[float, Stats]] = field(default_factory=dict)
    monitor_at: dict[uuid.UUID, float] = field(default_factory=dict)
    last: dict[uuid.UUID, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class VmFacts:
    devices: Devices
    memory_mib: int


def for_round(
    history: History,
    domains: Iterable[tuple[uuid.UUID, Stats]],
    taken_at: float,
    *,
    timed_out: bool,
    facts: Mapping[uuid.UUID, VmFacts],
    stale_after: float,
) -> dict[uuid.UUID, Mapping[str, Any]]:
    """Every domain's fragment for one round (`taken_at`: time.monotonic() of the round).
    A timed-out round repeats the last fragments with monitorResponse "-1"."""
    if timed_out:
        history.last = {v: {**f, "monitorResponse": "-1"} for v, f in history.last.items()}
        return history.last
    out: dict[uuid.UUID, Mapping[str, Any]] = {}
    prev_all, history.prev = history.prev, {}
    monitor_at = {}
    no_facts = VmFacts(Devices(), 0)
    for vm_id, cur in domains:
        before = prev_all.get(vm_id)
        prev, interval = (before[1], taken_at - before[0]) if before else (None, 0.0)
        vm = facts.get(vm_id, no_facts)
        frag = fragment(
            prev, cur, interval, vm.devices, memory_mib=vm.memory_mib, sample_time=taken_at
        )
        seen = taken_at if monitor_answered(cur) else history.monitor_at.get(vm_id)
        if seen is not None:
            monitor_at[vm_id] = seen
        stale = seen is not None and taken_at - seen > stale_after
        frag["monitorResponse"] = "-1" if stale else "0"
        out[vm_id] = frag
        history.prev[vm_id] = (taken_at, cur)
    history.monitor_at = monitor_at
    history.last = out
    return out
