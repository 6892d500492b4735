"""Appliance OVA extraction: a gzip tar the test builds with qemu-img images -> sparse volumes
in the image root, virtual size checked; no OVF, a missing disk and a size mismatch are each
refused with their own message and leave no file behind."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from agent import intake
from agent.errors import AgentError
from agent.intake import ova
from tests.intake_golden import HE_FULL_ID, HOST, he_full

SD = "c0ffee00-1111-4222-8333-444455556666"
DISKS = (
    ("5b1c0c1e-6f6a-4c43-9d61-2d7c3f3e0a01", "9d0f4a52-1c1b-4c1e-8e54-5d8a5b6c7d01", "qcow2"),
    ("5b1c0c1e-6f6a-4c43-9d61-2d7c3f3e0a02", "9d0f4a52-1c1b-4c1e-8e54-5d8a5b6c7d02", "raw"),
)


def image(path: Path, fmt: str, size: str = "1M") -> Path:
    # ovf:size is whole GiB, rounded up: a 1 MiB image matches "1", a 1025 MiB one does not
    subprocess.run(["qemu-img", "create", "-q", "-f", fmt, str(path), size], check=True)
    if fmt == "raw":  # some data among the holes
        with path.open("r+b") as f:
            f.seek(300 << 10)
            f.write(b"hvagent" * 1000)
    return path


def build_ova(
    tmp: Path,
    ovf_text: str | None = he_full(),
    *,
    ovf_first: bool = True,
    skip: int | None = None,
    sizes: tuple[str, str] = ("1M", "3M"),
) -> Path:
    members: list[tuple[str, Path | bytes]] = []
    for n, (img, vol, fmt) in enumerate(DISKS):
        if n != skip:
            members.append((f"images/{img}/{vol}", image(tmp / f"d{n}", fmt, sizes[n])))
            members.append((f"images/{img}/{vol}.meta", b"DOMAIN=x\nEOF\n"))
    if ovf_text is not None:
        entry = (f"master/vms/{HE_FULL_ID}/{HE_FULL_ID}.ovf", ovf_text.encode())
        members.insert(0 if ovf_first else len(members), entry)
    path = tmp / "appliance.ova"
    with tarfile.open(path, "w:gz") as tar:
        for name, src in members:
            if isinstance(src, Path):
                tar.add(src, arcname=name)
            else:
                info = tarfile.TarInfo(name)
                info.size = len(src)
                tar.addfile(info, io.BytesIO(src))
    return path


@pytest.fixture
def host(tmp_path):
    root = tmp_path / "images"
    root.mkdir()
    return dataclasses.replace(HOST, image_root=str(root), exists=os.path.exists)


def files(root: str) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


@pytest.mark.parametrize("ovf_first", [True, False])
def test_extracts_sparse_into_the_layout_and_converts(tmp_path, host, ovf_first):
    path = build_ova(tmp_path, ovf_first=ovf_first)
    c = intake.convert(uuid.UUID(HE_FULL_ID), {"ova": str(path)}, host)
    disks = [d for d in c.params["devices"] if d.get("device") == "disk"]
    for (img, vol, fmt), dev in zip(DISKS, disks, strict=True):
        want = Path(host.image_root) / SD / "images" / img / vol
        assert dev["path"] == str(want) and dev["format"] == fmt
        assert want.read_bytes() == (tmp_path / f"d{DISKS.index((img, vol, fmt))}").read_bytes()
    raw = Path(disks[1]["path"])
    assert raw.stat().st_blocks * 512 < raw.stat().st_size  # holes kept
    assert not any(".part" in f or "staging" in f for f in files(host.image_root))
    assert sorted(c.created) == sorted(d["path"] for d in disks)


def test_existing_volume_is_kept_not_overwritten(tmp_path, host):
    path = build_ova(tmp_path)
    img, vol, _ = DISKS[0]
    target = Path(host.image_root) / SD / "images" / img / vol
    target.parent.mkdir(parents=True)
    image(target, "qcow2", "2M")
    stamp = target.stat().st_mtime_ns
    c = intake.convert(uuid.UUID(HE_FULL_ID), {"ova": str(path)}, host)
    assert target.stat().st_mtime_ns == stamp
    assert any("is kept" in w["data"]["reason"] for w in c.warnings)
    assert str(target) not in c.created


def refused(path, host) -> AgentError:
    with pytest.raises(AgentError) as exc:
        ova.extract(str(path), host)
    assert files(host.image_root) == []  # partial files and directories removed
    return exc.value


@pytest.mark.parametrize("ovf_first", [True, False])
def test_no_ovf(tmp_path, host, ovf_first):
    err = refused(build_ova(tmp_path, None, ovf_first=ovf_first), host)
    assert err.code == 11 and "holds no OVF" in err.reason


@pytest.mark.parametrize("ovf_first", [True, False])
def test_missing_disk(tmp_path, host, ovf_first):
    err = refused(build_ova(tmp_path, skip=1, ovf_first=ovf_first), host)
    assert err.code == 11 and "he_data_disk" in err.reason and "not in the archive" in err.reason


@pytest.mark.parametrize("ovf_first", [True, False])
def test_size_mismatch(tmp_path, host, ovf_first):
    err = refused(build_ova(tmp_path, sizes=("1025M", "3M"), ovf_first=ovf_first), host)
    assert err.code == -32602 and "does not match the OVF's 1 GiB" in err.reason
    assert err.data["disk"] == "he_virtio_disk"


def test_not_an_archive(tmp_path, host):
    (tmp_path / "x.ova").write_bytes(b"plain text")
    err = refused(tmp_path / "x.ova", host)
    assert err.data["param"] == "vmParams.ova"


@pytest.mark.parametrize("value", ["relative.ova", 5, "/a\x00b"])
def test_bad_path(value, host):
    with pytest.raises(AgentError) as exc:
        ova.extract(value, host)
    assert exc.value.data["param"] == "vmParams.ova"


def test_bad_ovf_in_the_archive_is_refused_after_extraction_and_cleaned(tmp_path, host):
    text = he_full(**{"MegaBytes": "KiloBytes"})
    with pytest.raises(AgentError) as exc:
        intake.convert(uuid.UUID(HE_FULL_ID), {"ova": str(build_ova(tmp_path, text))}, host)
    assert "memory unit" in exc.value.reason
    assert files(host.image_root) == []
