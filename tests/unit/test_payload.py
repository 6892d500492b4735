"""Payload disks: validation and decoding (agent/intake/payload.py), and the images written
(agent/runtime/payloads.py) read back with pycdlib (ISO) and mtools (floppy)."""

from __future__ import annotations

import base64
import io
import os
import shutil
import stat
import subprocess
import sys
import uuid

import pycdlib
import pytest

from agent import errors
from agent.intake import payload
from agent.runtime import payloads

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
MB = 1 << 20
mtools = pytest.mark.skipif(shutil.which("mdir") is None, reason="mtools not installed")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def device(files, device="cdrom", vol_id=None):
    vp = {"file": files}
    if vol_id is not None:
        vp["volId"] = vol_id
    return {"type": "disk", "device": device, "specParams": {"vmPayload": vp}}


def params(*devices, **extra):
    return {"vmId": str(VM), "vmName": "p", "devices": list(devices), **extra}


def refused(p, max_bytes=MB):
    with pytest.raises(errors.AgentError) as info:
        payload.find(p, max_bytes)
    return info.value


# -- validation -----------------------------------------------------------------------------


def test_no_payload_passes_the_request_through():
    p = params({"type": "disk", "device": "cdrom", "path": "/x.iso"})
    assert not payload.wanted(p)
    found = payload.find(p, MB)
    assert found.images == [] and found.apply([]) is p


def test_missing_file_is_code_11_naming_it():
    p = params({"type": "disk", "device": "disk", "path": "/d"}, device(None))
    p["devices"][1]["specParams"]["vmPayload"] = {"volId": "x"}
    exc = refused(p)
    assert exc.code == 11
    assert exc.data["param"] == "devices[1].specParams.vmPayload.file"


@pytest.mark.parametrize(
    ("key", "why"),
    [
        ("../x", "'..'"),
        ("a/../../etc/passwd", "'..'"),
        ("/etc/passwd", "absolute"),
        ("", "non-empty"),
        ("a//b", "empty"),
        ("./a", "'.'"),
        ("a\x00b", "not allowed"),
        ("a\x85b", "not allowed"),
        ("a\ufffe", "not allowed"),
        ("a\ud800", "not allowed"),
        ("x" * 65, "longer"),
        ("/".join("d" * 8), "deeper"),
    ],
)
def test_bad_file_names_are_refused_naming_the_key(key, why):
    exc = refused(params(device({key: b64(b"x")})))
    assert exc.code == -32602
    assert exc.data["param"].startswith("devices[0].specParams.vmPayload.file[")
    assert why in exc.data["reason"]


def test_the_param_quotes_the_key():
    exc = refused(params(device({"ok": b64(b"x"), "../x": b64(b"y")})))
    assert exc.data["param"] == 'devices[0].specParams.vmPayload.file["../x"]'


@pytest.mark.parametrize("content", ["not base64!", "abc", 5, None, "é"])
def test_content_must_be_base64(content):
    exc = refused(params(device({"a": content})))
    assert exc.code == -32602
    assert exc.data["param"] == 'devices[0].specParams.vmPayload.file["a"]'


def test_base64_with_line_breaks_is_accepted():
    text = base64.encodebytes(b"y" * 200).decode()
    assert "\n" in text
    (image,) = payload.find(params(device({"a": text})), MB).images
    assert image.files == (("a", b"y" * 200),)


def test_total_size_above_max_bytes_is_refused():
    p = params(device({"a": b64(b"x" * 600)}), device({"b": b64(b"y" * 600)}))
    assert payload.find(p, 1200).images
    exc = refused(p, max_bytes=1199)
    assert exc.code == -32602
    assert exc.data["param"] == 'devices[1].specParams.vmPayload.file["b"]'
    assert "max_bytes" in exc.data["reason"]


def test_a_megabyte_string_over_the_limit_is_refused_before_decoding():
    exc = refused(params(device({"a": "A" * (8 * MB)})), max_bytes=MB)
    assert exc.data["param"] == 'devices[0].specParams.vmPayload.file["a"]'


@pytest.mark.parametrize("dev", ["disk", "lun", None])
def test_only_cdrom_and_floppy_carry_payloads(dev):
    d = device({"a": b64(b"x")})
    d["device"] = dev
    exc = refused(params(d))
    assert exc.code == -32602 and exc.data["param"] == "devices[0].device"


@pytest.mark.parametrize(
    ("kind", "label"),
    [("cdrom", "x" * 33), ("floppy", "x" * 12), ("cdrom", "a/b"), ("cdrom", 5)],
)
def test_bad_labels(kind, label):
    exc = refused(params(device({"a": b64(b"x")}, kind, label)))
    assert exc.data["param"] == "devices[0].specParams.vmPayload.volId"


@pytest.mark.parametrize(
    "files", [{"a": "", "a/b": ""}, {"A.txt": "", "a.TXT": ""}], ids=["file-and-dir", "case"]
)
def test_floppy_name_clashes(files):
    exc = refused(params(device(files, "floppy")))
    assert exc.data["param"] == "devices[0].specParams.vmPayload.file"


def test_floppy_refuses_fat_unsafe_names_and_overflow():
    exc = refused(params(device({"a:b": ""}, "floppy")))
    assert exc.data["param"] == 'devices[0].specParams.vmPayload.file["a:b"]'
    big = {f"f{i}": b64(b"z" * 700_000) for i in range(3)}
    exc = refused(params(device(big, "floppy")), max_bytes=10 * MB)
    assert "1.44 MB" in exc.data["reason"]


def test_cloud_init_checks():
    exc = refused(params(cloudInit={"userData": "#cloud-config\n"}))
    assert exc.code == 11 and exc.data["param"] == "vmParams.cloudInit.metaData"
    exc = refused(params(cloudInit={"userData": 1, "metaData": ""}))
    assert exc.data["param"] == "vmParams.cloudInit.userData"
    exc = refused(params(cloudInit={"userData": "", "metaData": "", "extra": ""}))
    assert exc.data["param"] == "vmParams.cloudInit.extra"
    exc = refused(params(cloudInit={"userData": "\ud800", "metaData": ""}))
    assert exc.data["param"] == "vmParams.cloudInit.userData"
    exc = refused(params(cloudInit="x"))
    assert exc.data["param"] == "vmParams.cloudInit"
    exc = refused({"xml": "<domain/>", "cloudInit": {}})
    assert exc.data["param"] == "vmParams.cloudInit"


def test_cloud_init_adds_a_cidata_cdrom_on_a_free_target():
    p = params(
        {"type": "disk", "device": "disk", "path": "/d", "iface": "ide", "index": "2"},
        cloudInit={
            "userData": "#cloud-config\n",
            "metaData": "instance-id: a\n",
            "vendorData": "v",
        },
    )
    found = payload.find(p, MB)
    (image,) = found.images
    assert (image.kind, image.label) == ("iso", "cidata")
    assert dict(image.files) == {
        "user-data": b"#cloud-config\n",
        "meta-data": b"instance-id: a\n",
        "vendor-data": b"v",
    }
    out = found.apply(["/pd/x.iso"])
    assert "cloudInit" not in out and "cloudInit" in p
    assert out["devices"][-1] == {
        "type": "disk", "device": "cdrom", "iface": "ide", "name": "hdd", "path": "/pd/x.iso",
        "readonly": "true",
    }  # fmt: skip
    q35 = payload.find(params(emulatedMachine="pc-q35-7.2", cloudInit=p["cloudInit"]), MB)
    assert q35.apply(["/i"])["devices"][-1]["name"] == "sdc"


def test_apply_sets_the_device_path_and_leaves_the_request_alone():
    p = params({"type": "disk", "device": "disk", "path": "/d"}, device({"a": b64(b"1")}))
    out = payload.find(p, MB).apply(["/pd/img.iso"])
    assert out["devices"][1]["path"] == "/pd/img.iso"
    assert "path" not in p["devices"][1]


ENGINE_XML = """<domain type="kvm" xmlns:ovirt-vm="http://ovirt.org/vm/1.0">
  <name>e</name><uuid>{vm}</uuid>
  <metadata><ovirt-vm:vm>
    <ovirt-vm:device devtype="disk" name="hdc"><ovirt-vm:payload>
      <ovirt-vm:volId>config-2</ovirt-vm:volId>
      <ovirt-vm:file path="openstack/latest/user_data">{data}</ovirt-vm:file>
    </ovirt-vm:payload></ovirt-vm:device>
  </ovirt-vm:vm></metadata>
  <devices>
    <disk type="file" device="cdrom"><source file="PAYLOAD:" startupPolicy="optional"/>
      <target dev="hdc" bus="ide"/><readonly/></disk>
  </devices>
</domain>"""


def test_engine_xml_payload_is_found_and_the_placeholder_replaced():
    xml = ENGINE_XML.format(vm=VM, data=b64(b"#cloud-config\n"))
    found = payload.find({"xml": xml}, MB)
    (image,) = found.images
    assert image.label == "config-2"
    assert image.files == (("openstack/latest/user_data", b"#cloud-config\n"),)
    out = found.apply(["/pd/e.iso"])["xml"]
    assert 'file="/pd/e.iso"' in out and "PAYLOAD:" not in out


def test_engine_xml_payload_errors():
    xml = ENGINE_XML.format(vm=VM, data="!!")
    exc = refused({"xml": xml})
    assert exc.data["param"].startswith("vmParams.xml") and "base64" in exc.data["reason"]
    no_meta = ENGINE_XML.format(vm=VM, data="").replace('name="hdc"', 'name="hdd"')
    exc = refused({"xml": no_meta})
    assert exc.code == 11 and exc.data["param"] == "vmParams.xml"
    disk = ENGINE_XML.format(vm=VM, data="").replace('device="cdrom"', 'device="disk"')
    assert refused({"xml": disk}).data["param"] == "vmParams.xml"


# -- the images -----------------------------------------------------------------------------


def _iso_file(path, name, kind="rr_path"):
    iso = pycdlib.PyCdlib()
    iso.open(path)
    try:
        out = io.BytesIO()
        iso.get_file_from_iso_fp(out, **{kind: name})
        return out.getvalue(), iso.pvd.volume_identifier.decode().strip()
    finally:
        iso.close()


def test_iso_has_rock_ridge_joliet_names_and_the_label(tmp_path):
    files = {
        "openstack/latest/user_data": b"#cloud-config\nruncmd: [x]\n",
        "openstack/latest/meta_data.json": b'{"uuid": "a"}',
        "openstack/content/0000": bytes(range(256)),
        "A long name.with.dots": b"dots",
    }
    (image,) = payload.find(
        params(device({k: b64(v) for k, v in files.items()}, vol_id="config-2")), MB
    ).images
    (path,) = payloads.write(str(tmp_path / "pd"), VM, [image])
    for name, data in files.items():
        assert _iso_file(path, "/" + name) == (data, "config-2")
        assert _iso_file(path, "/" + name, "joliet_path")[0] == data
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert os.path.basename(path).startswith(f"{VM}.") and path.endswith(".iso")


def test_iso_without_vol_id_is_labelled_cdrom_as_mkisofs(tmp_path):
    (image,) = payload.find(params(device({"a": b64(b"1")})), MB).images
    (path,) = payloads.write(str(tmp_path), VM, [image])
    assert _iso_file(path, "/a") == (b"1", "CDROM")


def _mtools(*argv):
    env = {"MTOOLS_SKIP_CHECK": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(argv, env=env, capture_output=True, check=True).stdout


@mtools
def test_floppy_is_1_44_mb_fat12_with_label_and_files(tmp_path):
    files = {"Unattend.xml": b"<unattend/>\n", "dir/sub/Long File Name.txt": b"x" * 5000}
    dev = device({k: b64(v) for k, v in files.items()}, "floppy", "sysprep")
    (image,) = payload.find(params(dev), MB).images
    (path,) = payloads.write(str(tmp_path), VM, [image])
    assert os.path.getsize(path) == 1474560 and path.endswith(".img")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert b"SYSPREP" in _mtools("mlabel", "-i", path, "-s", "::")
    for name, data in files.items():
        assert _mtools("mtype", "-i", path, f"::/{name}") == data
    with open(path, "rb") as f:
        boot = f.read(512)
    assert boot[54:62] == b"FAT12   " and boot[43:54].rstrip() == b"sysprep"


def test_every_write_is_a_fresh_name_and_remove_for_takes_only_this_vm(tmp_path):
    (image,) = payload.find(params(device({"a": b64(b"1")})), MB).images
    first = payloads.write(str(tmp_path), VM, [image])
    second = payloads.write(str(tmp_path), VM, [image])
    other = uuid.uuid4()
    theirs = payloads.write(str(tmp_path), other, [image])
    stranger = tmp_path / f"{VM}.keep"
    stranger.write_text("not ours")
    assert first != second
    assert sorted(payloads.remove_for(str(tmp_path), VM)) == sorted(first + second)
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(theirs[0]), stranger.name])
    assert payloads.remove_for(str(tmp_path / "absent"), VM) == []


@mtools
def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    iso = payload.Image("iso", None, (("a", b"1"),), "p")
    flop = payload.Image("floppy", None, (("a", b"1"),), "q")

    def broken(*argv):
        raise errors.CreateFailed("mcopy broke")

    monkeypatch.setattr(payloads, "_mtools", broken)
    with pytest.raises(errors.CreateFailed):
        payloads.write(str(tmp_path), VM, [iso, flop])
    assert os.listdir(tmp_path) == []


def test_the_param_escapes_hostile_keys():
    exc = refused(params(device({"a\x00\nb\ud800": b64(b"x")})))
    assert exc.data["param"] == 'devices[0].specParams.vmPayload.file["a\\u0000\\nb\\ud800"]'
    assert exc.data["param"].isascii() and exc.data["param"].isprintable()


_KILLED_MID_COPY = """
import os, sys, uuid
from agent.intake import payload
from agent.runtime import payloads
real = payloads._mtools
def dies_in_mcopy(*argv):
    if argv[0] == "mcopy":
        os._exit(9)  # the process dies here: no cleanup of any kind runs
    real(*argv)
payloads._mtools = dies_in_mcopy
image = payload.Image("floppy", None, (("a", b"1"),), "q")
payloads.write(sys.argv[1], uuid.UUID(sys.argv[2]), [image])
"""


@mtools
def test_sweep_partial_removes_what_a_killed_write_left_and_nothing_else(tmp_path):
    done = subprocess.run([sys.executable, "-c", _KILLED_MID_COPY, str(tmp_path), str(VM)])
    assert done.returncode == 9
    left = sorted(os.listdir(tmp_path))
    assert len(left) == 2, left  # `.<vm>.<random>.img.tmp` and its `.files-*` work dir
    (image,) = payload.find(params(device({"a": b64(b"1")})), MB).images
    kept = payloads.write(str(tmp_path), VM, [image])
    stranger = tmp_path / ".hidden.tmp"
    stranger.write_text("not ours")
    assert sorted(payloads.sweep_partial(str(tmp_path))) == [str(tmp_path / n) for n in left]
    assert sorted(os.listdir(tmp_path)) == sorted([os.path.basename(kept[0]), stranger.name])
    assert payloads.sweep_partial(str(tmp_path / "absent")) == []
