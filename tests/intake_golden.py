"""Intake goldens: a real or hand-written OVF / vm.conf (tests/data/ovf) -> the domain XML
hvagent defines (tests/data/ovf/golden/<case>.xml) and the warnings it answers with
(<case>.warnings.json). Comparison is semantic (C14N 2.0, tests/golden.canonical).

Regenerate after a deliberate change: `python -m tests.intake_golden` (then review the diff).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

from agent import intake
from agent.config import VirtConfig
from agent.intake import launch
from agent.intake.host import HostView

DIR = Path(__file__).parent / "data" / "ovf"
GOLDEN = DIR / "golden"
HOST = HostView(
    image_root="/images",
    exists=lambda path: True,
    host_uuid="4c4c4544-0042-3510-8052-b4c04f4d3732",
    os_name="Debian GNU/Linux",
    os_version="12",
)
VIRT = VirtConfig(
    domain_type="qemu", console_log_dir="/var/log/hvagent/console", image_root=HOST.image_root
)
HE_FULL_ID = "7e1a5f0c-3b1d-4f7e-9a55-0c2d9e8b4a11"

ENGINE_XML = """<domain type="kvm" xmlns:ovirt-vm="http://ovirt.org/vm/1.0">
<name>HostedEngine</name><uuid>{id}</uuid><memory>262144</memory><vcpu>1</vcpu>
<sysinfo type="smbios"><system><entry name="manufacturer">oVirt</entry>
<entry name="product">OS-NAME:</entry><entry name="version">OS-VERSION:</entry>
<entry name="serial">HOST-SERIAL:</entry></system></sysinfo>
<os><type arch="x86_64" machine="pc">hvm</type><smbios mode="sysinfo"/></os>
<on_reboot>restart</on_reboot>
<devices>
<disk type="file" device="cdrom"><driver name="qemu" type="raw"/><source file=""/>
<target dev="hdc" bus="ide"/><readonly/></disk>
<disk type="file" device="disk"><driver name="qemu" type="qcow2"/>
<source file="/rhev/data-center/{pool}/{sd}/images/{img}/{vol}"/>
<target dev="vda" bus="virtio"/></disk>
{lease}</devices></domain>"""


def engine_xml(lease: bool = False) -> str:
    lease_el = (
        '<lease><key>k</key><lockspace>s</lockspace><target offset="LEASE-OFFSET:" '
        'path="LEASE-PATH:"/></lease>'
        if lease
        else ""
    )
    xml = ENGINE_XML.format(
        id=HE_FULL_ID,
        lease=lease_el,
        pool=uuid.UUID(int=0),
        sd="c0ffee00-1111-4222-8333-444455556666",
        img="5b1c0c1e-6f6a-4c43-9d61-2d7c3f3e0a01",
        vol="9d0f4a52-1c1b-4c1e-8e54-5d8a5b6c7d01",
    )
    return xml.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def he_full(**swap: str) -> str:
    text = (DIR / "he_full.ovf").read_text()
    for old, new in swap.items():
        assert old in text or old.startswith("<EngineXml"), old
        text = text.replace(old, new)
    return text


def _headless_q35_efi() -> str:
    text = he_full(
        **{
            "DisplayType>1<": "DisplayType>4<",
            "<BiosType>0</BiosType>": "<BiosType>2</BiosType>",
            "<CustomEmulatedMachine>pc</CustomEmulatedMachine>": "",
        }
    )
    return re.sub(
        r"<Item>(?:(?!</Item>).)*<Type>(?:graphics|video)</Type>.*?</Item>", "", text, flags=re.S
    )


CASES = {
    # case: (vm id, vmParams builder)
    "ha_ovf_test": (
        "50e59bbd-f829-4761-ba1b-6db1a6acc3b8",
        lambda: {"ovf": (DIR / "ha_ovf_test.xml").read_text()},
    ),
    "ha_ovf_test_v4.2": (
        "b4491372-8f8a-4e08-8524-f8fb986a548a",
        lambda: {"ovf": (DIR / "ha_ovf_test_v4.2.xml").read_text()},
    ),
    "he_full": (HE_FULL_ID, lambda: {"ovf": he_full()}),
    "he_headless_q35_efi": (HE_FULL_ID, lambda: {"ovf": _headless_q35_efi()}),
    "he_engine_xml": (
        HE_FULL_ID,
        lambda: {
            "ovf": he_full(
                **{"<Origin>6</Origin>": f"<Origin>6</Origin><EngineXml>{engine_xml()}</EngineXml>"}
            )
        },
    ),
    "he_engine_xml_lease": (
        HE_FULL_ID,
        lambda: {
            "ovf": he_full(
                **{
                    "<Origin>6</Origin>": "<Origin>6</Origin>"
                    f"<EngineXml>{engine_xml(lease=True)}</EngineXml>"
                }
            )
        },
    ),
    "setup_vm_test": (
        "82a24281-8a25-4772-b9c9-45971e811cb3",
        lambda: {"vmConf": (DIR / "setup_vm_test.conf").read_text()},
    ),
    "setup_vm_test_xml": (
        "dbc9d98d-4a5c-4e4e-bc9b-621b189709fd",
        lambda: {"vmConf": (DIR / "setup_vm_test_xml.conf").read_text()},
    ),
}

# The host's networks the goldens see (agent/hostnet.py's seam): ovirtmgmt's bridge address.
NETWORKS = {"ovirtmgmt": "192.0.2.1"}


def cases() -> list[str]:
    return sorted(CASES)


def build(case: str, host: HostView = HOST) -> tuple[str, list[dict]]:
    """(domain XML, warnings) for one case, through the same path VM.create takes."""
    vm_id, params = CASES[case]
    converted = intake.convert(uuid.UUID(vm_id), params(), host)
    plan = launch.plan(uuid.UUID(vm_id), converted.params, VIRT, address_of=NETWORKS.get)
    return plan.xml, [*converted.warnings, *plan.warnings]  # as VM.create answers


def expected(case: str) -> tuple[str, list[dict]]:
    xml = (GOLDEN / f"{case}.xml").read_text()
    warnings = json.loads((GOLDEN / f"{case}.warnings.json").read_text())
    return xml, warnings


if __name__ == "__main__":
    GOLDEN.mkdir(exist_ok=True)
    for name in cases():
        xml, warns = build(name)
        (GOLDEN / f"{name}.xml").write_text(xml)
        (GOLDEN / f"{name}.warnings.json").write_text(json.dumps(warns, indent=2) + "\n")
        print(name, len(warns), "warnings")
