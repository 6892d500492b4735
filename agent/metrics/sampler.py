"""The sampler: one named task taking libvirt bulk stats into an immutable Snapshot.

Scrapes never call libvirt: they read the latest Snapshot. Each round is time-boxed
(`[metrics] sample_timeout_s`) and runs on the adapter's own small stats executor with
VIR_CONNECT_GET_ALL_DOMAINS_STATS_NOWAIT, so a domain stuck in a QEMU monitor call can delay
one round at most; it never blocks a scrape nor the verbs' libvirt threads. A round that
times out keeps the previous snapshot and marks it `timed_out` (per VM in the scrape); the
next round waits for that same call instead of queueing another one behind it.

The same worker-thread hop that renders /metrics turns the round into every VM's stats
fragment (agent/vmstats.py `for_round`), with the device facts `facts()` gives (read on the
loop, before the hop), and serializes each fragment once; the Snapshot carries them as
`vm_stats` (VM.getStats, events copy them) and `vm_stats_json` (Host.getAllVmStats splices
them into its answer).
A VM's figures count as stale (monitorResponse "-1") after STALE_ROUNDS intervals.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable, Mapping

from agent.metrics.collector import render
from agent.metrics.snapshot import Snapshot
from agent.virt.port import DomainStats, Hypervisor
from agent.vmstats import History, VmFacts, for_round

log = logging.getLogger(__name__)

STALE_ROUNDS = 3


class Sampler:
    def __init__(
        self,
        port: Hypervisor,
        *,
        interval_s: float,
        timeout_s: float,
        facts: Callable[[], Mapping[uuid.UUID, VmFacts]] = dict,
    ) -> None:
        self._port = port
        self._facts = facts
        self._history = History()
        self._interval = interval_s
        self._timeout = timeout_s
        self.snapshot = Snapshot(taken_at=0.0)
        # Exposition text of `snapshot`'s per-VM families, replaced after each round.
        self.rendered = b""
        # A bulk-stats call still running from an earlier, timed-out round: awaited again
        # rather than queueing another call behind a stuck domain.
        self._inflight: asyncio.Future[list[DomainStats]] | None = None

    async def sample_once(self) -> Snapshot:

        start = time.monotonic()
        try:
            if self._inflight is None or self._inflight.done():
                self._inflight = asyncio.ensure_future(self._port.all_domain_stats())
            async with asyncio.timeout(self._timeout):
                domains = await asyncio.shield(self._inflight)
        except TimeoutError:
            log.warning("libvirt bulk stats took longer than %.1f s; keeping last", self._timeout)
            old = self.snapshot
            snap = Snapshot(old.taken_at, old.domains, True, time.monotonic() - start)
        else:
            snap = Snapshot(time.monotonic(), tuple(domains), False, time.monotonic() - start)
        # Rendering 1000 VMs takes ~0.3 s of CPU: a worker thread keeps the loop serving.
        snap, rendered = await asyncio.to_thread(self._convert, snap, self._facts())
        self.snapshot, self.rendered = snap, rendered
        return snap

    def _convert(
        self, snap: Snapshot, facts: Mapping[uuid.UUID, VmFacts]
    ) -> tuple[Snapshot, bytes]:
        """On the worker thread: VM stats fragments, then the /metrics text."""
        vm_stats = for_round(
            self._history,
            ((d.vm_id, d.stats) for d in snap.domains),
            snap.taken_at,
            timed_out=snap.timed_out,
            facts=facts,
            stale_after=STALE_ROUNDS * self._interval,
        )
        as_json = {vm_id: json.dumps(frag)[1:-1] for vm_id, frag in vm_stats.items()}
        snap = dataclasses.replace(snap, vm_stats=vm_stats, vm_stats_json=as_json)
        return snap, render(snap)

    async def run(self) -> None:
        try:
            while True:
                try:
                    await self.sample_once()
                except Exception as exc:  # connection loss is handled by the registry
                    log.warning("libvirt bulk stats failed: %s", exc)
                await asyncio.sleep(self._interval)
        finally:
            if self._inflight is not None:
                self._inflight.cancel()
