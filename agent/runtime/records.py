"""DownRecords: the VMs that are Down without a libvirt domain, kept across restarts.

A VM whose start failed has no domain (libvirt refused it, or it was undefined again), so
its exit info cannot live in domain metadata. VDSM keeps such a VM listed Down, with its
reason, until VM.destroy; so does hvagent, across restarts too: one small JSON file per VM
under `[state] dir`/down/, written atomically (temp file, fsync, rename), removed by
VM.destroy, read back by recovery. File I/O runs off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from agent.status import ExitCode, ExitInfo, ExitReason

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DownRecord:
    vm_id: uuid.UUID
    name: str
    exit: ExitInfo


class DownRecords:
    def __init__(self, state_dir: str | None) -> None:
        self._dir = Path(state_dir) / "down" if state_dir else None

    async def save(self, record: DownRecord) -> None:
        if self._dir is not None:
            await asyncio.to_thread(self._write, record)

    async def remove(self, vm_id: uuid.UUID) -> None:
        if self._dir is not None:
            await asyncio.to_thread(self._unlink, vm_id)

    async def load(self) -> list[DownRecord]:
        if self._dir is None:
            return []
        return await asyncio.to_thread(self._read_all)

    def _path(self, vm_id: uuid.UUID) -> Path:
        assert self._dir is not None
        return self._dir / f"{vm_id}.json"

    def _write(self, record: DownRecord) -> None:
        assert self._dir is not None
        self._dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        body = {
            "vmId": str(record.vm_id),
            "vmName": record.name,
            **record.exit.to_wire(),
        }
        path = self._path(record.vm_id)
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(body, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)

    def _unlink(self, vm_id: uuid.UUID) -> None:
        self._path(vm_id).unlink(missing_ok=True)

    def _read_all(self) -> list[DownRecord]:
        assert self._dir is not None
        out = []
        for path in sorted(self._dir.glob("*.json")) if self._dir.is_dir() else []:
            try:
                body = json.loads(path.read_text())
                exit_info = ExitInfo(
                    ExitCode(int(body["exitCode"])),
                    ExitReason(int(body["exitReason"])),
                    str(body["exitMessage"]),
                )
                out.append(DownRecord(uuid.UUID(body["vmId"]), str(body["vmName"]), exit_info))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                log.warning("ignoring unreadable Down record %s: %s", path.name, exc)
        return out
