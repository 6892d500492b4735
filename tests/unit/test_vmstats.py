"""agent/vmstats.py on synthetic QEMU-shaped bulk stats: every field, two-sample rates, disks
and NICs matched by name across samples, monitorResponse."""

from __future__ import annotations

import uuid

from agent.domxml import parse
from agent.domxml.live import Devices, DiskFacts, NicFacts, devices
from agent.vmstats import History, VmFacts, for_round, fragment

IMAGE = str(uuid.uuid4())
DEVICES = Devices(
    nics=(
        NicFacts("vnet0", "52:54:00:aa:bb:01", "virtio"),
        NicFacts("vnet1", "52:54:00:aa:bb:02", "rtl8139"),
    ),
    disks=(DiskFacts("vda", IMAGE), DiskFacts("sda", None)),
    balloon=True,
    min_guaranteed_mib=256,
)  # fmt: skip


def sample(t: int, *, swap: bool = False) -> dict:
    """QEMU-shaped bulk stats after `t` seconds of steady load (t = 0, 10, ...)."""
    s = {
        "state.state": 1,
        "cpu.time": 3 * 10**8 * t,  # 30 % of one CPU
        "cpu.user": 2 * 10**8 * t,  # 20 % in user mode
        "cpu.system": 5 * 10**7 * t,  # 5 % in the kernel
        "vcpu.current": 2,
        "vcpu.maximum": 4,
        "balloon.current": 1048576,
        "balloon.maximum": 2097152,
        "balloon.available": 1000000,
        "balloon.unused": 400000,
        "balloon.disk_caches": 100000,
        "balloon.usable": 450000,
        "balloon.rss": 900000,
        "balloon.swap_in": 7 * t,
        "balloon.swap_out": 3 * t,
        "balloon.major_fault": 2 * t,
        "balloon.minor_fault": 50 * t,
        "balloon.last-update": 1700000000 + t,
    }
    disks = [("sda", 1), ("vda", 0)] if swap else [("vda", 0), ("sda", 1)]
    s["block.count"] = 2
    for i, (name, k) in enumerate(disks):
        # vda: 1000 B/s reads, 10 reads/s at 2 ms each; sda idle but 5 flushes/s of 1 ms
        s |= {
            f"block.{i}.name": name,
            f"block.{i}.rd.bytes": (1000 * t) if k == 0 else 4096,
            f"block.{i}.rd.reqs": (10 * t) if k == 0 else 1,
            f"block.{i}.rd.times": (10 * t * 2_000_000) if k == 0 else 500,
            f"block.{i}.wr.bytes": (2048 * t) if k == 0 else 0,
            f"block.{i}.wr.reqs": (4 * t) if k == 0 else 0,
            f"block.{i}.wr.times": (4 * t * 3_000_000) if k == 0 else 0,
            f"block.{i}.fl.reqs": 0 if k == 0 else 5 * t,
            f"block.{i}.fl.times": 0 if k == 0 else 5 * t * 1_000_000,
            f"block.{i}.allocation": 5_000_000 + k,
            f"block.{i}.capacity": 10_000_000_000 + k,
            f"block.{i}.physical": 6_000_000 + k,
        }
    nics = ["vnet1", "vnet0"] if swap else ["vnet0", "vnet1"]
    s["net.count"] = 2
    for i, name in enumerate(nics):
        n = int(name[-1])
        s |= {
            f"net.{i}.name": name,
            f"net.{i}.rx.bytes": 100 * t + n,
            f"net.{i}.tx.bytes": 50 * t + n,
        }
        s |= {f"net.{i}.rx.errs": n, f"net.{i}.rx.drop": 2 * n, f"net.{i}.tx.errs": 3 * n}
        s |= {f"net.{i}.tx.drop": 4 * n, f"net.{i}.rx.pkts": t, f"net.{i}.tx.pkts": t}
    return s


def test_first_sample_has_the_shape_and_no_rates():
    f = fragment(None, sample(10), 0.0, DEVICES, memory_mib=2048, sample_time=5.5)
    assert f["cpuActual"] is False and f["cpuUser"] == "0.00" and f["cpuSys"] == "0.00"
    assert f["cpuUsage"] == str(2 * 10**9 + 5 * 10**8)
    assert f["vcpuCount"] == "2" and f["vcpuQuota"] == "-1" and f["vcpuPeriod"] == "100000"
    vda = f["disks"]["vda"]
    assert vda["readRate"] == "0.00" and vda["readLatency"] == "0" and vda["readOps"] == "100"
    assert f["memoryStats"]["swap_in"] == 0 and f["memoryStats"]["pageflt"] == 0
    assert f["network"]["vnet0"]["sampleTime"] == 5.5


def test_cpu_percentages_over_the_interval():
    f = fragment(sample(10), sample(20), 10.0, DEVICES)
    assert f["cpuActual"] is True
    assert f["cpuSys"] == "25.00"  # (user + system) / interval
    assert f["cpuUser"] == "5.00"  # (time - user - system) / interval
    assert f["cpuUsage"] == str(4 * 10**9 + 10**9)


def test_cpu_user_clamped_at_zero():
    prev, cur = sample(10), sample(20)
    cur["cpu.time"] = prev["cpu.time"] + 1  # user+system grew more than the total
    assert fragment(prev, cur, 10.0, DEVICES)["cpuUser"] == "0.00"


def test_memory_and_balloon():
    f = fragment(sample(10), sample(20), 10.0, DEVICES, memory_mib=2048)
    assert f["memoryStats"] == {
        "mem_total": "1000000",
        "mem_unused": "400000",
        "mem_free": "500000",
        "mem_buffers": "0",
        "mem_cached": "100000",
        "swap_in": 7,
        "swap_out": 3,
        "majflt": 2,
        "minflt": 50,
        "pageflt": 52,
    }
    assert f["memUsage"] == "50"
    assert f["balloonInfo"] == {
        "balloon_max": "2097152",
        "balloon_min": str(256 * 1024),
        "balloon_cur": "1048576",
        "balloon_target": "2097152",
        "ballooning_enabled": True,
    }


def test_no_balloon_device_no_balloon_info():
    no_balloon = Devices(nics=DEVICES.nics, disks=DEVICES.disks, balloon=False)
    assert fragment(None, sample(1), 0.0, no_balloon)["balloonInfo"] == {}


def test_disks_by_name_across_reordered_samples():
    f = fragment(sample(10), sample(20, swap=True), 10.0, DEVICES)
    vda, sda = f["disks"]["vda"], f["disks"]["sda"]
    assert vda["readRate"] == "1000.00" and vda["writeRate"] == "2048.00"
    assert vda["readLatency"] == "2000000.00" and vda["writeLatency"] == "3000000.00"
    assert vda["flushLatency"] == "0"  # no flushes in the interval
    assert vda["readOps"] == "200" and vda["writeOps"] == "80"
    assert vda["readBytes"] == "20000" and vda["writtenBytes"] == "40960"
    assert vda["truesize"] == "6000000" and vda["apparentsize"] == "10000000000"
    assert vda["imageID"] == IMAGE and "imageID" not in sda
    assert sda["readRate"] == "0.00" and sda["readLatency"] == "0"
    assert sda["flushLatency"] == "1000000.00" and sda["truesize"] == "6000001"


def test_hot_plugged_disk_without_previous_sample():
    prev, cur = sample(10), sample(20)
    cur |= {"block.count": 3, "block.2.name": "vdb", "block.2.rd.bytes": 10**6}
    cur |= {"block.2.rd.reqs": 10, "block.2.rd.times": 10}
    vdb = fragment(prev, cur, 10.0, DEVICES)["disks"]["vdb"]
    assert vdb["readBytes"] == "1000000" and vdb["readRate"] == "0.00"
    assert vdb["readLatency"] == "0"


def test_disk_in_xml_but_not_in_sample_gets_defaults():
    cur = {k: v for k, v in sample(1).items() if not k.startswith("block.")}
    sda = fragment(None, cur, 0.0, DEVICES)["disks"]["sda"]
    assert sda["readOps"] == "0" and sda["apparentsize"] == "0"


def test_truesize_falls_back_to_allocation():
    cur = {"block.count": 1, "block.0.name": "vda", "block.0.allocation": 4096}
    assert fragment(None, cur, 0.0, DEVICES)["disks"]["vda"]["truesize"] == "4096"


def test_network_by_name_with_mac_model_and_counters():
    f = fragment(sample(10), sample(20, swap=True), 10.0, DEVICES, sample_time=42.0)
    vnet0, vnet1 = f["network"]["vnet0"], f["network"]["vnet1"]
    assert vnet0 == {
        "name": "vnet0",
        "macAddr": "52:54:00:aa:bb:01",
        "speed": "1000",
        "state": "unknown",
        "rx": "2000",
        "tx": "1000",
        "rxErrors": "0",
        "rxDropped": "0",
        "txErrors": "0",
        "txDropped": "0",
        "sampleTime": 42.0,
    }
    assert vnet1["macAddr"] == "52:54:00:aa:bb:02" and vnet1["speed"] == "100"
    assert (vnet1["rx"], vnet1["rxErrors"], vnet1["rxDropped"]) == ("2001", "1", "2")
    assert (vnet1["txErrors"], vnet1["txDropped"]) == ("3", "4")


def test_state_only_stats_keep_the_shape():
    """What libvirt's test driver reports: state only."""
    f = fragment({"state.state": 1}, {"state.state": 1}, 10.0, Devices())
    assert f["cpuActual"] is False and f["cpuUsage"] == "0"
    assert f["memoryStats"] == {} and f["balloonInfo"] == {} and f["memUsage"] == "0"
    assert f["disks"] == {} and f["network"] == {} and "vcpuCount" not in f


def test_cputune_from_xml():
    dom = parse(
        "<domain><cputune><quota>50000</quota><period>200000</period></cputune>"
        "<devices><interface type='bridge'><mac address='52:54:00:AA:00:01'/>"
        "<target dev='vnet7'/><model type='e1000e'/></interface>"
        f"<disk type='file'><target dev='vdc'/><serial>{IMAGE}</serial></disk>"
        "<disk type='file'><target dev='vdd'/><serial>not-a-uuid</serial></disk>"
        "<memballoon model='virtio'/></devices></domain>"
    )
    dev = devices(dom)
    assert dev.nics == (NicFacts("vnet7", "52:54:00:aa:00:01", "e1000e"),)
    assert dev.disks == (DiskFacts("vdc", IMAGE), DiskFacts("vdd", None)) and dev.balloon
    f = fragment(None, {"net.count": 1, "net.0.name": "vnet7"}, 0.0, dev)
    assert f["vcpuQuota"] == "50000" and f["vcpuPeriod"] == "200000"
    assert f["network"]["vnet7"]["speed"] == "1000"


def test_devices_hash_changes_with_the_devices_only():
    base = "<domain><name>a</name><devices><disk><target dev='vda'/></disk>{}</devices></domain>"
    one = devices(parse(base.format(""))).hash
    assert one == devices(parse(base.format("").replace("<name>a", "<name>b"))).hash
    two = devices(parse(base.format("<interface type='network'/>"))).hash
    assert one and two and one != two


VM = uuid.uuid4()
FACTS = {VM: VmFacts(DEVICES, 2048)}


def test_round_uses_taken_at_for_the_interval_and_keeps_history():
    h = History()
    first = for_round(h, [(VM, sample(10))], 100.0, timed_out=False, facts=FACTS, stale_after=30)
    assert first[VM]["cpuActual"] is False and first[VM]["monitorResponse"] == "0"
    second = for_round(h, [(VM, sample(20))], 110.0, timed_out=False, facts=FACTS, stale_after=30)
    assert second[VM]["cpuSys"] == "25.00" and second[VM]["disks"]["vda"]["readRate"] == "1000.00"
    assert second[VM]["network"]["vnet0"]["sampleTime"] == 110.0


def test_timed_out_round_repeats_last_figures_flagged():
    h = History()
    for_round(h, [(VM, sample(10))], 100.0, timed_out=False, facts=FACTS, stale_after=30)
    stuck = for_round(h, [], 100.0, timed_out=True, facts=FACTS, stale_after=30)
    assert stuck[VM]["monitorResponse"] == "-1" and stuck[VM]["cpuUsage"] != "0"
    back = for_round(h, [(VM, sample(40))], 130.0, timed_out=False, facts=FACTS, stale_after=30)
    assert back[VM]["monitorResponse"] == "0"


def test_monitor_keys_missing_for_too_long_is_stale():
    h = History()
    no_monitor = {k: v for k, v in sample(20).items() if ".rd." not in k and "rss" not in k}
    no_monitor.pop("balloon.last-update")
    for_round(h, [(VM, sample(10))], 100.0, timed_out=False, facts=FACTS, stale_after=30)
    soon = for_round(h, [(VM, no_monitor)], 120.0, timed_out=False, facts=FACTS, stale_after=30)
    assert soon[VM]["monitorResponse"] == "0"
    late = for_round(h, [(VM, no_monitor)], 131.0, timed_out=False, facts=FACTS, stale_after=30)
    assert late[VM]["monitorResponse"] == "-1"
    again = for_round(h, [(VM, sample(40))], 140.0, timed_out=False, facts=FACTS, stale_after=30)
    assert again[VM]["monitorResponse"] == "0"


def test_never_monitored_vm_is_not_stale():
    h = History()
    for t in (100.0, 200.0, 300.0):
        out = for_round(h, [(VM, {"state.state": 1})], t, timed_out=False, facts={}, stale_after=1)
        assert out[VM]["monitorResponse"] == "0"


def test_vm_gone_from_the_round_is_dropped():
    h = History()
    for_round(h, [(VM, sample(10))], 100.0, timed_out=False, facts=FACTS, stale_after=30)
    assert for_round(h, [], 110.0, timed_out=False, facts=FACTS, stale_after=30) == {}
