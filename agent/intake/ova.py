"""The appliance OVA (reference hosted-engine.md §1.8, §2.5): a gzip tar holding
`master/vms/<id>/<id>.ovf` and `images/<imageID>/<volumeID>` disks.

`extract` reads the archive in one streaming pass: each disk the OVF names is written sparse
(zero blocks become holes) to a temporary file beside its final place in the image root
(`<root>/<domainID>/images/<imageID>/<volumeID>`), its virtual size is checked with
`qemu-img info` against the OVF's `ovf:size` (GiB), then it is renamed into place. A volume
already there is kept (it is the VM's disk from an earlier deploy) and reported. On any error
every file this call created is removed. Blocking I/O: run it with asyncio.to_thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from agent.errors import InvalidParams, MissingParameter
from agent.intake import ovf
from agent.intake.host import HostView, Warnings

PARAM = "vmParams.ova"
CHUNK = 1 << 20
GIB = 1 << 30


@dataclass
class Extracted:
    ovf_text: str
    created: list[str] = field(default_factory=list)
    warnings: Warnings = field(default_factory=Warnings)

    def remove(self, root: str) -> None:
        _remove(self.created, root)


def _remove(paths: list[str], root: str, prune: tuple[str, ...] = ()) -> None:
    """Unlink `paths`, then the directories left empty (theirs and those of `prune`), up to
    (not including) `root`."""
    top = Path(root).resolve()
    for path in paths:
        with contextlib.suppress(OSError):
            os.unlink(path)
    for path in (*paths, *prune):
        parent = Path(path).parent
        while parent != top and top in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent


@dataclass(frozen=True)
class _Want:
    path: str
    fmt: str
    size_gib: int
    alias: str


def _bad(reason: str, cls: type = InvalidParams, **data: Any) -> Exception:
    return cls(f"{PARAM}: {reason}", param=PARAM, **data)


def extract(ova_path: Any, host: HostView) -> Extracted:
    if not isinstance(ova_path, str) or not ova_path.startswith("/") or "\x00" in ova_path:
        raise _bad("expected an absolute path to the OVA on this host")
    created: list[str] = []
    pending: dict[str, Path] = {}  # member name -> temp file, when seen before the OVF
    wants: dict[str, _Want] = {}
    try:
        result = _walk(ova_path, host, created, pending, wants)
    except BaseException:
        prune = tuple(w.path for w in wants.values())
        _remove([str(p) for p in pending.values()] + created, host.image_root, prune)
        raise
    finally:
        with contextlib.suppress(OSError):
            (Path(host.image_root) / ".ova-staging").rmdir()
    return result


def _walk(
    ova_path: str,
    host: HostView,
    created: list[str],
    pending: dict[str, Path],
    wants: dict[str, _Want],
) -> Extracted:
    ovf_text: str | None = None
    done: set[str] = set()
    warnings = Warnings()
    staging = Path(host.image_root) / ".ova-staging"
    try:
        tar = tarfile.open(ova_path, "r|gz")  # noqa: SIM115 (closed by the with below)
    except (OSError, tarfile.TarError) as exc:
        raise _bad(f"cannot open {ova_path} as a gzip tar: {exc}") from None
    with tar:
        try:
            for member in tar:
                name = member.name.lstrip("./")
                if name.startswith("master/") and name.endswith(".ovf") and ovf_text is None:
                    data = _read(tar, member, 16 << 20)
                    ovf_text = data.decode("utf-8", "replace")
                    wants.update(_wants(ovf_text, host))
                    for member_name, tmp in list(pending.items()):
                        if member_name in wants:
                            _finish(tmp, wants[member_name], created, warnings)
                            done.add(member_name)
                        else:
                            tmp.unlink()
                    pending.clear()
                elif name.startswith("images/") and member.isfile() and not name.endswith(".meta"):
                    if ovf_text is None:
                        staging.mkdir(parents=True, exist_ok=True)
                        tmp = staging / f"{uuid.uuid4()}.part"
                        pending[name] = tmp
                        _copy(tar.extractfile(member), tmp)
                    elif name in wants:
                        want = wants[name]
                        if os.path.exists(want.path):
                            warnings.add(
                                f"disk {want.alias}: {want.path} exists and is kept "
                                "(not overwritten from the OVA)",
                                PARAM,
                                path=want.path,
                            )
                        else:
                            tmp = Path(want.path + f".{uuid.uuid4().hex[:8]}.part")
                            Path(want.path).parent.mkdir(parents=True, exist_ok=True)
                            pending[name] = tmp
                            _copy(tar.extractfile(member), tmp)
                            del pending[name]
                            created.append(str(tmp))
                            _check(tmp, want)
                            os.rename(tmp, want.path)
                            created[-1] = want.path
                        done.add(name)
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise _bad(f"cannot read {ova_path}: {exc}") from None
    if ovf_text is None:
        raise _bad(f"{ova_path} holds no OVF (master/vms/<id>/<id>.ovf)", MissingParameter)
    for name, want in wants.items():
        if name not in done and not os.path.exists(want.path):
            raise _bad(
                f"disk {want.alias} ({name}) named by the OVF is not in the archive",
                MissingParameter,
                disk=want.alias,
            )
        if name not in done:
            warnings.add(f"disk {want.alias}: {want.path} exists and is kept", PARAM)
    return Extracted(ovf_text, list(created), warnings)


def _finish(tmp: Path, want: _Want, created: list[str], warnings: Warnings) -> None:
    if os.path.exists(want.path):
        tmp.unlink()
        warnings.add(f"disk {want.alias}: {want.path} exists and is kept", PARAM)
        return
    Path(want.path).parent.mkdir(parents=True, exist_ok=True)
    created.append(str(tmp))
    _check(tmp, want)
    os.rename(tmp, want.path)
    created[-1] = want.path


def _wants(ovf_text: str, host: HostView) -> dict[str, _Want]:
    """tar member name -> where and what the OVF says that disk is."""
    root = ovf.load(ovf_text, PARAM)
    content = ovf.child(root, "Content")
    hw = ovf.section(content, "VirtualHardwareSection_Type") if content is not None else None
    items = {
        ovf.text(i, "InstanceId"): i
        for i in (hw if hw is not None else [])
        if ovf.local(i) == "Item"
    }
    out = {}
    for disk in ovf.disk_section(content) if content is not None else []:
        ref = ovf.attr(disk, "fileRef") or ""
        image, _, volume = ref.partition("/")
        item = items.get(ovf.attr(disk, "diskId"))
        domain = (ovf.text(item, "StorageId") if item is not None else None) or str(
            uuid.UUID(int=0)
        )
        size = ovf.integer(ovf.attr(disk, "size"), "Disk/@ovf:size", 1) or 0
        fmt = {"RAW": "raw", "COW": "qcow2"}.get((ovf.attr(disk, "volume-format") or "").upper())
        if fmt is None:
            raise _bad(f"disk {ref}: unknown volume-format")
        path = host.volume_path(domain, image, volume, PARAM)
        out[f"images/{ref}"] = _Want(path, fmt, size, ovf.attr(disk, "disk-alias") or ref)
    return out


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int) -> bytes:
    if member.size > limit:
        raise _bad(f"{member.name} is larger than {limit} bytes")
    f = tar.extractfile(member)
    assert f is not None
    return f.read()


def _copy(src: IO[bytes] | None, dest: Path) -> None:
    """Copy sparse: all-zero chunks become holes; the length is set at the end."""
    assert src is not None
    zero = memoryview(bytes(CHUNK))
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
    try:
        size = 0
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = src.readinto(view)  # type: ignore[attr-defined]
            if not n:
                break
            if view[:n] == zero[:n]:
                os.lseek(fd, n, os.SEEK_CUR)
            else:
                os.write(fd, view[:n])
            size += n
        os.ftruncate(fd, size)
    finally:
        os.close(fd)


def _check(path: Path, want: _Want) -> None:
    try:
        out = subprocess.run(
            ["qemu-img", "info", "--output=json", "-f", want.fmt, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        ).stdout
        virtual = int(json.loads(out)["virtual-size"])
    except (subprocess.SubprocessError, OSError, ValueError, KeyError) as exc:
        raise _bad(f"disk {want.alias}: not a {want.fmt} image: {exc}") from None
    if -(-virtual // GIB) != want.size_gib:
        raise _bad(
            f"disk {want.alias}: virtual size {virtual} bytes does not match the OVF's "
            f"{want.size_gib} GiB",
            disk=want.alias,
            virtualSize=virtual,
            ovfSizeGiB=want.size_gib,
        )
