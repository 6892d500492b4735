"""Payload images on disk: built from agent/intake/payload.py's `Image`s, under `[payload] dir`.

An ISO is built with pycdlib (Rock Ridge + Joliet, in-process); a floppy is a 1.44 MB FAT12
image made with mtools (`mformat`, `mmd`, `mcopy`). Each image gets a fresh name
`<vmId>.<random>.iso|img`, is written to a hidden temporary name, made 0640 and renamed into
place: a reader never sees half an image and no create reuses an old one. `remove_for(vm)`
deletes every image of one VM (destroy, the VM going down); only names of that form directly
in the payload dir are ever touched; `sweep_partial` (at startup) deletes what a killed
hvagent left half-written (hidden `.<vmId>.<random>.*.tmp` files and their work dirs).
Blocking: callers run these on a worker thread.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pycdlib

from agent.errors import CreateFailed
from agent.intake.payload import Image

log = logging.getLogger(__name__)

MODE = 0o640
FLOPPY_BYTES = 1440 * 1024
DIR_MODE = 0o751  # QEMU (another user) opens the images by name; nobody lists them
_MTOOLS_ENV = {"MTOOLS_SKIP_CHECK": "1", "MTOOLSRC": "/dev/null", "PATH": "/usr/bin:/bin"}


def write(directory: str, vm_id: uuid.UUID, images: list[Image]) -> list[str]:
    """Write `images`; returns their paths. On failure nothing written stays."""
    root = Path(directory)
    root.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    written: list[str] = []
    try:
        for image in images:
            ext = "iso" if image.kind == "iso" else "img"
            final = root / f"{vm_id}.{secrets.token_hex(8)}.{ext}"
            tmp = root / f".{final.name}.tmp"
            try:
                if image.kind == "iso":
                    _write_iso(image, tmp)
                else:
                    _write_floppy(image, tmp)
                os.chmod(tmp, MODE)
                os.rename(tmp, final)
            finally:
                tmp.unlink(missing_ok=True)
            written.append(str(final))
            log.info("payload %s: %s (%d files)", image.param, final, len(image.files))
    except BaseException:
        remove(written)
        raise
    return written


def remove(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.warning("could not remove payload image %s: %s", path, exc.strerror)


def remove_for(directory: str, vm_id: uuid.UUID) -> list[str]:
    """Delete every payload image of `vm_id` in `directory`; returns what was removed."""
    pattern = re.compile(rf"\.?{vm_id}\.[0-9a-f]{{16}}\.(iso|img)(\.tmp)?")
    try:
        names = [n for n in os.listdir(directory) if pattern.fullmatch(n)]
    except FileNotFoundError:
        return []
    paths = [os.path.join(directory, n) for n in names]
    remove(paths)
    return paths


_PARTIAL = re.compile(r"\.[0-9a-f-]{36}\.[0-9a-f]{16}\.(iso|img)\.tmp(\.files-[\w-]+)?")


def sweep_partial(directory: str) -> list[str]:
    """Delete the hidden half-written images (and floppy work dirs) a killed hvagent left in
    `directory`; only names of that exact form are touched. Call it before any create runs."""
    try:
        names = [n for n in os.listdir(directory) if _PARTIAL.fullmatch(n)]
    except FileNotFoundError:
        return []
    paths = [os.path.join(directory, n) for n in names]
    for path in paths:
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            remove([path])
    if paths:
        log.info("payload: removed %d half-written image(s) left by an earlier run", len(paths))
    return paths


# -- ISO: pycdlib ---------------------------------------------------------------------------


def _write_iso(image: Image, target: Path) -> None:
    iso = pycdlib.PyCdlib()
    iso.new(interchange_level=3, rock_ridge="1.09", joliet=3, vol_ident=image.label or "CDROM")
    names = _IsoNames()
    for path, data in image.files:
        parts = path.split("/")
        for n in range(1, len(parts)):
            rel = "/".join(parts[:n])
            if rel not in names.dirs:
                iso.add_directory(names.dir(rel), rr_name=parts[n - 1], joliet_path="/" + rel)
        iso.add_fp(
            io.BytesIO(data), len(data), names.file(path), rr_name=parts[-1], joliet_path="/" + path
        )
    with _exclusive(target) as f:
        iso.write_fp(f)
    iso.close()


class _IsoNames:
    """Plain ISO 9660 names (8.3, d-characters, unique per directory); readers use the Rock
    Ridge / Joliet names, which are exact."""

    def __init__(self) -> None:
        self.dirs: dict[str, str] = {"": ""}
        self._taken: dict[str, set[str]] = {}

    def _unique(self, parent: str, stem: str, ext: str) -> str:
        taken = self._taken.setdefault(parent, set())
        name = stem or "_"
        n = 0
        while f"{name}.{ext}" in taken:
            n += 1
            name = f"{stem[: 8 - len(str(n)) - 1]}_{n}"
        taken.add(f"{name}.{ext}")
        return name

    def dir(self, rel: str) -> str:
        parent, _, base = rel.rpartition("/")
        name = self._unique(parent, _d_chars(base)[:8], "")
        self.dirs[rel] = f"{self.dirs[parent]}/{name}"
        return self.dirs[rel]

    def file(self, rel: str) -> str:
        parent, _, base = rel.rpartition("/")
        stem, dot, ext = base.rpartition(".")
        if not dot:
            stem, ext = base, ""
        name = self._unique(parent, _d_chars(stem)[:8], _d_chars(ext)[:3])
        return f"{self.dirs[parent]}/{name}.{_d_chars(ext)[:3]};1"


def _d_chars(text: str) -> str:
    return re.sub(r"[^A-Z0-9_]", "_", text.upper())


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[BinaryIO]:
    """A new file (O_EXCL, 0640), flushed and fsynced when the block ends."""
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE), "wb") as f:
        yield f
        f.flush()
        os.fsync(f.fileno())


# -- floppy: mtools ------------------------------------------------------------------------


def _write_floppy(image: Image, target: Path) -> None:
    with _exclusive(target) as f:  # claim the name, 0640, before mtools writes it
        f.truncate(FLOPPY_BYTES)
    label = ["-v", image.label] if image.label else []
    _mtools("mformat", "-i", str(target), "-f", "1440", *label, "::")
    made: set[str] = set()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f"{target.name}.files-") as tmp:
        for i, (path, data) in enumerate(image.files):
            parts = path.split("/")
            for n in range(1, len(parts)):
                rel = "/".join(parts[:n])
                if rel not in made:
                    _mtools("mmd", "-i", str(target), f"::/{rel}")
                    made.add(rel)
            src = Path(tmp) / str(i)
            src.write_bytes(data)
            _mtools("mcopy", "-i", str(target), "-D", "o", str(src), f"::/{path}")
    with open(target, "rb+") as f:
        os.fsync(f.fileno())


def _mtools(*argv: str) -> None:
    tool = shutil.which(argv[0], path=_MTOOLS_ENV["PATH"])
    if tool is None:
        raise CreateFailed(f"{argv[0]} (mtools) is not installed: cannot build a floppy payload")
    done = subprocess.run(
        [tool, *argv[1:]],
        env=_MTOOLS_ENV,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=60,
        check=False,
    )
    if done.returncode != 0:
        err = done.stderr.decode("utf-8", "replace").strip()[:500]
        raise CreateFailed(f"{argv[0]} failed building a floppy payload: {err}")
