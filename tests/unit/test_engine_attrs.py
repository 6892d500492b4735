"""Engine XML element and attribute allow-list (agent/intake/xmlattrs.py, issue 15)."""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path

import pytest

from agent import domxml
from agent.config import HostAccessConfig, VirtConfig
from agent.errors import InvalidParams
from agent.intake import hostaccess, launch, xmlattrs
from tests import intake_golden

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
CFG = VirtConfig(domain_type="qemu", console_log_dir="/logs")
DATA = Path(__file__).parents[1] / "data"
POLICY = hostaccess.for_host(HostAccessConfig(), CFG)


def engine_sample(vm_id: uuid.UUID = VM) -> str:
    return (DATA / "engine/ovirt44_vm.xml").read_text().replace("@VMID@", str(vm_id))


def he_sample() -> str:
    conf = (intake_golden.DIR / "setup_vm_test_xml.conf").read_text()
    return base64.b64decode(re.search(r"^xmlBase64=(.*)$", conf, re.M).group(1)).decode()


def test_engine_shaped_xml_passes_whole():
    plan = launch.plan(VM, {"xml": engine_sample()}, CFG)
    root = domxml.parse(plan.xml)
    assert root.find("devices/disk/source/seclabel") is not None  # kept, not stripped
    assert root.find("metadata/{http://ovirt.org/vm/1.0}vm") is not None


def test_hosted_engine_xml_passes_the_allow_list():
    xmlattrs.check(domxml.parse(he_sample()), POLICY)


@pytest.mark.parametrize("path", sorted((DATA / "domxml").glob("*.xml")), ids=lambda p: p.stem)
def test_hvagents_own_xml_stays_inside_the_allow_list(path):
    """What hvagent builds from vmParams is not run through the list (the builders are ours),
    but it must stay inside it: an engine sending the same XML would be refused otherwise."""
    xmlattrs.check(domxml.parse(path.read_text()), POLICY)


def test_the_table_is_the_schemas_shape():
    assert xmlattrs.ALLOWED["/domain"] == {"id", "type"}
    assert {"file", "dev", "startupPolicy"} <= xmlattrs.ALLOWED["disk/source"]
    assert "onerror" not in xmlattrs.ALLOWED["disk/source"]
    assert "devices/disk" in xmlattrs.ALLOWED and "devices/frobnicate" not in xmlattrs.ALLOWED


def with_devices(devices: str, extra: str = "", ns: str = "") -> str:
    return (
        f"<domain type='kvm'{ns}><name>a</name><uuid>{VM}</uuid><memory>65536</memory>"
        f"<os><type arch='x86_64'>hvm</type></os>{extra}<devices>{devices}</devices></domain>"
    )


DISK = "<disk type='file' device='disk'>{}<target dev='vda'/></disk>"
REFUSED = [
    # unknown attribute anywhere: on the root, a domain child, a device, deep in a device
    ("root-attr", with_devices("").replace("type='kvm'", "type='kvm' evil='1'"), "/domain",
     "attribute 'evil' is not allowed on <domain>"),
    ("memory-attr", with_devices("").replace("<memory>", "<memory x='1'>"), "/domain/memory",
     "attribute 'x'"),
    ("disk-attr", with_devices("<disk type='file' device='disk' onerror='x'/>"),
     "/domain/devices/disk", "attribute 'onerror'"),
    ("source-attr", with_devices(DISK.format("<source file='/rhev/data-center/a' x='y'/>")),
     "/domain/devices/disk/source", "attribute 'x'"),
    ("second-disk", with_devices(DISK.format("") + DISK.format("<driver name='qemu' z=''/>")),
     "/domain/devices/disk[2]/driver", "attribute 'z'"),
    # an element the schema has elsewhere but not under this parent, or nowhere
    ("nested-element", with_devices(DISK.format("<frob/>")), "/domain/devices/disk/frob",
     "element 'frob' is not allowed"),
    ("misplaced", with_devices("<interface type='network'><readonly/></interface>"),
     "/domain/devices/interface/readonly", "no such element there"),
    # namespaces: only inside <metadata>
    ("ns-attr", with_devices("", ns=" xmlns:x='urn:x'").replace("<memory>", "<memory x:a='1'>"),
     "/domain/memory", "attribute '{urn:x}a'"),
    ("ns-element", with_devices(DISK.format("<x:thing/>"), ns=" xmlns:x='urn:x'"),
     "/domain/devices/disk/x:thing",
     "namespaced element 'thing'"),
    # known-dangerous attributes and elements
    ("rawio", with_devices("<disk type='block' device='lun' rawio='yes'/>"),
     "/domain/devices/disk", "CAP_SYS_RAWIO"),
    ("mirror", with_devices(DISK.format("<mirror file='/tmp/m' job='copy'/>")),
     "/domain/devices/disk/mirror", "block-job mirror"),
    ("rendernode", with_devices("<graphics type='spice'><gl enable='yes' "
     "rendernode='/dev/dri/renderD128'/></graphics>"), "/domain/devices/graphics/gl",
     "allow_hostdev"),
    ("nbd-socket", with_devices("<disk type='network' device='disk'><source protocol='nbd'>"
     "<host transport='unix' socket='/run/secret.sock'/></source></disk>"),
     "/domain/devices/disk/source/host", "attribute socket: '/run/secret.sock' resolves"),
    ("vhostuser", with_devices("<interface type='vhostuser'><source type='unix' "
     "path='/etc/x.sock' mode='client'/></interface>"), "/domain/devices/interface/source",
     "attribute path"),
    ("rng-egd", with_devices("<rng model='virtio'><backend model='egd' type='unix'><source "
     "mode='connect' path='/etc/x'/></backend></rng>"), "/domain/devices/rng/backend/source",
     "outside the allowed roots"),
    ("audio-file", with_devices("<audio id='1' type='file' path='/etc/cron.d/x'/>"),
     "/domain/devices/audio", "attribute path"),
    ("rbd-config", with_devices("<disk type='network' device='disk'><source protocol='rbd' "
     "name='p/v'><config file='/etc/shadow'/></source></disk>"),
     "/domain/devices/disk/source/config", "attribute file"),
    ("nvdimm-path", with_devices("<memory model='nvdimm'><source><path>/etc/shadow</path>"
     "</source><target><size unit='KiB'>1024</size></target></memory>"),
     "/domain/devices/memory/source/path", "text: '/etc/shadow' resolves"),
]  # fmt: skip


@pytest.mark.parametrize(("xml", "where", "reason"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])  # fmt: skip
def test_refused_with_the_element_path_and_attribute(xml, where, reason):
    with pytest.raises(InvalidParams) as exc:
        launch.plan(VM, {"xml": xml}, CFG)
    assert exc.value.data["param"] == "vmParams.xml"
    assert f"{where}: " in exc.value.data["reason"], exc.value.data
    assert reason in exc.value.data["reason"], exc.value.data


def test_host_paths_inside_the_roots_are_accepted():
    xml = with_devices(
        "<interface type='vhostuser'><source type='unix' path='/run/hvagent/v.sock' "
        "mode='client'/><model type='virtio'/></interface>"
        "<audio id='1' type='file' path='/var/log/hvagent/a.wav'/>"
    )
    launch.plan(VM, {"xml": xml}, CFG)


def test_rendernode_with_allow_hostdev():
    xml = with_devices("<graphics type='spice'><gl enable='yes' rendernode='/dev/dri/r'/>"
                       "</graphics>")  # fmt: skip
    launch.plan(VM, {"xml": xml}, CFG, HostAccessConfig(allow_hostdev=True))


def test_metadata_children_are_not_looked_at():
    xml = with_devices("", extra="<metadata><x:any y:z='1' xmlns:x='urn:x' xmlns:y='urn:y'>"
                       "<x:deep evil='1'/></x:any></metadata>")  # fmt: skip
    launch.plan(VM, {"xml": xml}, CFG)


def test_a_huge_attribute_name_is_echoed_short():
    xml = with_devices("").replace("type='kvm'", f"type='kvm' {'a' * 5000}='1'")
    with pytest.raises(InvalidParams) as exc:
        launch.plan(VM, {"xml": xml}, CFG)
    assert len(exc.value.data["reason"]) < 400
