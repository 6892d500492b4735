"""Fuzzing hvagent's JSON-RPC over HTTP: hostile request strategies (hypothesis) and a real
daemon process to aim them at, with the properties every answer must keep.

`Target` starts `python -m agent` on libvirt's test driver (`test:///default`, private to
that process) with the default host-access policy, and `Target.send(body)` checks one
exchange: HTTP 200 (204 for notifications only), every reply valid JSON-RPC 2.0, never
-32603. `Target.check_health()` checks the process is alive, /readyz is 200 and /metrics
is 200; `Target.clean_up()` destroys every VM the fuzz created and checks libvirt holds no
domain hvagent did not know before (no orphan). Used by tests/integration/test_fuzz.py
(bounded, CI) and `make fuzz` (long, with RSS per pass).
"""

from __future__ import annotations

import http.client
import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from tests.client import free_port

ROOT = Path(__file__).parents[1]
VERBS = [
    "Host.ping2", "Host.getCapabilities", "Host.getStats", "Host.getVMList",
    "Host.getVMFullList", "Host.getAllVmStats", "Host.dumpxmls", "VM.create", "VM.destroy",
    "VM.getStats", "VM.getInfo", "VM.shutdown", "VM.reset", "VM.setDestroyOnReboot",
    "VM.setTicket", "VM.updateDevice", "VM.pause", "VM.cont", "VM.hotplugDisk",
    "VM.hotunplugDisk", "VM.hotplugNic", "VM.hotunplugNic", "VM.setNumberOfCpus",
    "VM.setBalloonTarget", "Host.getHardwareInfo", "VM.readChannel",
]  # fmt: skip

HOTPLUG_XML = [
    '<hotplug><devices><disk type="file"><source file="/etc/passwd"/>'
    '<target dev="vda"/></disk></devices></hotplug>',
    '<hotplug><devices><interface type="bridge"><source bridge="br0"/>'
    "<script path='/bin/sh'/></interface></devices></hotplug>",
    '<!DOCTYPE h [<!ENTITY e SYSTEM "file:///etc/passwd">]><hotplug>&e;</hotplug>',
    "<hotplug><devices><disk><target dev='zz'/></disk></devices></hotplug>",
    "<hotplug>" * 10000,
]
NASTY_TEXT = [
    "", " ", "\x00", "a\x00b", "\x07", "\x1b[31m", "\x7f", "\x85", "\ud800", "a\udfffb",
    "\ufffe", "\uffff", "²", "\u0661", "9" * 5000, "x" * 70000, "-1", "1e3", "0x10", "NaN",
    "a\n2026-12-02 10:00:00,000 ERROR agent forged", "../../etc/shadow", "/etc/shadow",
    "/dev/vda", "/var/lib/libvirt/images/../../../etc/passwd", "vnc", "spice", "true",
    "<x/>", "]]>", "&amp;", "'\"", "%s%n", "\u202e", "🙂",
]  # fmt: skip

scalars = st.one_of(
    st.sampled_from(NASTY_TEXT),
    st.text(max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, 1, -1, 2**31, 2**63, 10**12]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
VM_FIELDS = [
    "vmName", "memSize", "smp", "maxVCpus", "kernel", "initrd", "kernelArgs", "custom",
    "emulatedMachine", "cpuType", "cpuPinning", "numaTune", "guestNumaNodes", "maxMemSize",
    "display", "displayNetwork", "boot", "timeOffset", "launchPaused", "kvmEnable",
]  # fmt: skip
DEVICE_TYPES = ["disk", "interface", "graphics", "console", "channel", "video", "tpm", "rng"]
DEV_FIELDS = ["path", "device", "serial", "network", "format", "iface", "specParams", "name"]


def engine_xml(vm_id: str, body: str) -> str:
    return (
        f"<domain type='kvm'><name>fz-{vm_id[:8]}</name><uuid>{vm_id}</uuid>"
        f"<memory>65536</memory><os><type>hvm</type></os>{body}</domain>"
    )


XML_BODIES = [
    "", "<vcpu>abc</vcpu>", "<vcpu>²</vcpu>", "<devices><emulator>/tmp/x</emulator></devices>",
    "<devices><hostdev/></devices>", "<devices><filesystem/></devices>", "<seclabel type='none'/>",
    "<devices><serial type='file'><source path='/etc/x'/></serial></devices>",
    "<devices><disk type='file'><source file='/etc/shadow'/><target dev='vda'/></disk></devices>",
    "<description>\ud800</description>", "<currentMemory>1e3</currentMemory>",
]  # fmt: skip


@st.composite
def vm_params(draw, vm_id: str) -> dict[str, Any]:
    params: dict[str, Any] = {"vmId": vm_id, "vmName": f"fz-{vm_id[:8]}", "memSize": 64}
    if draw(st.integers(0, 9)) == 0:
        params = {"vmId": vm_id, "xml": engine_xml(vm_id, draw(st.sampled_from(XML_BODIES)))}
        return params
    for key in draw(st.lists(st.sampled_from(VM_FIELDS), max_size=3, unique=True)):
        params[key] = draw(values)
    if draw(st.booleans()):
        devices = []
        for _ in range(draw(st.integers(1, 3))):
            dev: dict[str, Any] = {"type": draw(st.sampled_from(DEVICE_TYPES))}
            for key in draw(st.lists(st.sampled_from(DEV_FIELDS), max_size=3, unique=True)):
                dev[key] = draw(values)
            devices.append(dev)
        params["devices"] = devices
    return params


KNOWN = "@known:"  # stands for a VM the fuzz created; Target.send fills it in


@st.composite
def requests(draw) -> Any:
    """One request object (or a batch, or raw text) aimed at hvagent's verbs. A vmID may be
    KNOWN + index: one of the VMs created so far (resolved when sent, so the strategy never
    depends on the daemon's state)."""
    kind = draw(st.integers(0, 19))
    if kind == 0:
        return draw(st.sampled_from(["[" * 50000, '{"a":' * 50000, "{", "", "null", "[]"]))
    method = draw(st.one_of(st.sampled_from(VERBS), st.sampled_from(NASTY_TEXT)))
    vm_id = draw(
        st.one_of(
            st.integers(0, 19).map(lambda i: f"{KNOWN}{i}"),
            st.uuids().map(str),
            st.sampled_from(NASTY_TEXT),
        )
    )
    params: dict[str, Any] = {"vmID": vm_id}
    if method == "VM.create":
        fresh = str(draw(st.uuids()))
        params = {"vmID": fresh, "vmParams": draw(vm_params(fresh))}
    elif method in ("VM.setTicket", "VM.updateDevice"):
        ticket = {"password": draw(values), "ttl": draw(values)}
        if method == "VM.updateDevice":
            ticket |= {
                "deviceType": "graphics",
                "graphicsType": draw(st.sampled_from(["vnc", "spice", "rdp"])),
                "consoleDisconnectActionDelay": draw(values),
            }
            params["params"] = ticket
        else:
            params |= ticket
    elif method.startswith(("VM.hotplug", "VM.hotunplug")):
        fields = [*DEV_FIELDS, "macAddr", "nicModel", "index"]
        dev = {k: draw(values) for k in draw(st.lists(st.sampled_from(fields), max_size=3))}
        which = "drive" if method.endswith("Disk") else "nic"
        xml = st.one_of(values, st.sampled_from(HOTPLUG_XML))  # the engine-XML form
        params["params"] = draw(
            st.one_of(
                values,
                st.just({"vmId": vm_id, which: dev}),
                xml.map(lambda x: {"vmId": vm_id, "xml": x}),
            )
        )
    elif method in ("VM.setNumberOfCpus", "VM.setBalloonTarget"):
        params["numberOfCpus" if method.endswith("Cpus") else "target"] = draw(values)
    elif method == "VM.readChannel":
        names = st.sampled_from(["org.ovirt.hosted-engine-setup.0", "fuzz.0"])
        params["name"] = draw(st.one_of(names, values))
        for key in draw(st.lists(st.sampled_from(["offset", "size"]), max_size=2)):
            params[key] = draw(values)
    elif method == "Host.dumpxmls":
        known = st.integers(0, 19).map(lambda i: f"{KNOWN}{i}")
        params = {"vmList": draw(st.lists(st.one_of(known, values)))}
    for key in draw(st.lists(st.sampled_from(["delay", "timeout", "force", "extra"]), max_size=2)):
        params[key] = draw(values)
    request = {"jsonrpc": "2.0", "id": draw(st.integers(0, 10**6)), "method": method}
    request["params"] = params
    if kind == 1:
        return [request, draw(values), {"jsonrpc": "2.0", "method": "Host.ping2"}]
    return request


class Target:
    """hvagent as a process on the test driver, and the checks every exchange passes."""

    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        cfg = tmp / "hvagent.toml"
        cfg.write_text(
            f'[rpc]\nlisten = "127.0.0.1:{self.port}"\nsocket = ""\n'
            '[libvirt]\nuri = "test:///default"\n'
            f'[virt]\nconsole_log_dir = "{tmp / "console"}"\n[logging]\nlevel = "WARNING"\n'
        )
        self.log = tmp / "hvagent.log"
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "agent", "--config", str(cfg)],
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.created: set[str] = set()
        self.requests = 0
        self._conn: http.client.HTTPConnection | None = None
        deadline = time.monotonic() + 60
        while not self._ready():
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            assert time.monotonic() < deadline, "hvagent not ready in 60 s"
            time.sleep(0.1)
        self.initial = self.vm_ids()

    def _http(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                headers = {"Content-Type": "application/json"} if body is not None else {}
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                return response.status, response.read()
            except (ConnectionError, http.client.HTTPException, OSError):
                self._conn.close()
                self._conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _ready(self) -> bool:
        try:
            return self._http("GET", "/readyz")[0] == 200
        except OSError:
            return False

    def send(self, request: Any) -> Any:
        """One exchange; returns the parsed reply after checking the properties."""
        request = self._resolve(request)
        if isinstance(request, str):
            body = request.encode("utf-8", "surrogatepass")
        else:
            body = json.dumps(request, ensure_ascii=True).encode()
        self.requests += 1
        status, data = self._http("POST", "/jsonrpc", body)
        if status == 204:
            assert not data
            return None
        assert status == 200, (status, data[:500])
        reply = json.loads(data)
        for item in reply if isinstance(reply, list) else [reply]:
            check_response(item)
        self._note_created(request, reply)
        return reply

    def _note_created(self, request: Any, reply: Any) -> None:
        """Remember the VMs a VM.create answered with a result (alone or in a batch)."""
        sent = request if isinstance(request, list) else [request]
        answers = reply if isinstance(reply, list) else [reply]
        ok_ids = {a["id"] for a in answers if "result" in a}
        for item in sent:
            if (
                isinstance(item, dict)
                and item.get("method") == "VM.create"
                and item.get("id") in ok_ids
            ):
                self.created.add(item["params"]["vmID"])

    def _resolve(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith(KNOWN):
            known = sorted(self.created)
            return known[int(value[len(KNOWN) :]) % len(known)] if known else str(uuid.uuid4())
        if isinstance(value, list):
            return [self._resolve(v) for v in value]
        if isinstance(value, dict):
            return {k: self._resolve(v) for k, v in value.items()}
        return value

    def call(self, method: str, **params: Any) -> Any:
        reply = self.send({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
        assert "result" in reply, reply
        return reply["result"]

    def vm_ids(self) -> set[str]:
        return {vm["vmId"] for vm in self.call("Host.getVMList")}

    def check_health(self) -> None:
        assert self.proc.poll() is None, self.log.read_text()[-3000:]
        status, body = self._http("GET", "/readyz")
        assert status == 200, (status, body)
        status, body = self._http("GET", "/metrics")
        assert status == 200 and b"hvagent_metrics_exposition_failed" not in body, body[-2000:]

    def clean_up(self) -> None:
        """Destroy what the fuzz created; libvirt then holds only what it held before."""
        for vm_id in sorted(self.created):
            reply = self.send(
                {"jsonrpc": "2.0", "id": 1, "method": "VM.destroy", "params": {"vmID": vm_id}}
            )
            assert "result" in reply or reply["error"]["code"] == 1, reply
        self.created.clear()
        left = self.vm_ids()
        assert left == self.initial, (left - self.initial, self.initial - left)

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError("no VmRSS")

    def stop(self) -> int:
        if self._conn is not None:
            self._conn.close()
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(60)


def check_response(item: Any) -> None:
    """One JSON-RPC 2.0 response object, and never an internal error."""
    assert isinstance(item, dict) and item.get("jsonrpc") == "2.0", item
    assert "id" in item and (("result" in item) != ("error" in item)), item
    if "error" in item:
        error = item["error"]
        assert isinstance(error.get("code"), int) and isinstance(error.get("message"), str)
        assert error["code"] != -32603, item
        assert len(json.dumps(error)) < 5000, "an error echoes too much"
