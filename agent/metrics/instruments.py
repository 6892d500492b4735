"""hvagent's own instruments, on a CollectorRegistry the daemon creates (never the global one).

API for the parts that record (wired by their owners):
- `rpc_finished(method, outcome, duration_s)`: api/rpc.py, once per verb call. Unknown verbs
  arrive as one method name ("unknown", api/methods.py); any label value that is not short
  printable ASCII is recorded as "invalid", so no request can add unbounded series or break
  the exposition.
- `libvirt_call(call, duration_s)`, `libvirt_call_timed_out(call)`: virt/adapter.py
  `call_observer`, `timeout_observer` (call names are hvagent's own, a fixed set).
- `recovery_finished(duration_s)`: the daemon, after startup recovery.
- `power_operation_started()` / `power_operation_finished(kind, outcome, stage, duration_s)`:
  power operations (kind e.g. shutdown|reboot; outcome ok|failed|gave_up; stage the last
  step taken: agent|acpi|forced).
- `console_sessions(vm, console, count)` and `console_ticket(vm, console, expiry_epoch_s)`:
  the VM owners, on console client events, tickets and status changes; None removes the
  series (the VM is down or gone), so destroyed VMs leave no labels behind.
Gauges read at collect time (hvagent_vms, hvagent_libvirt_up, hvagent_events_subscribers)
come from the callables handed to `watch()`; the channel series (hvagent_channel_bytes_total,
hvagent_channel_readers, hvagent_channel_log_bytes, labels vm and channel: names hvagent
checked at VM.create, never a reader's text) from the one handed to `watch_channels()`.
The STOMP listener (agent/stomp/server.py) records on `stomp_connections`, `stomp_frames`,
`stomp_subscriptions`, `stomp_slow_consumer_closes` and `tls_handshake_failures` directly.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import math
import time
from collections import Counter as _Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

from agent.status import VmStatus

_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LE = [floatToGoString(b) for b in (*_FAST, math.inf)]  # bucket labels, as Histogram writes them
_SLOW = (1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class _RpcCalls(Collector):
    """hvagent_rpc_requests_total{method,outcome} and hvagent_rpc_duration_seconds{method}: the
    samples prometheus_client's Counter and Histogram would expose (with their _created), kept
    as plain numbers. Their children lock a mutex per increment and walk the buckets on every
    observation, once per RPC call; here a call costs one dict lookup and a bisect. Recorded
    and collected on the event-loop thread only (the registry's scrape runs there)."""

    def __init__(self) -> None:
        # (method, outcome) -> ([calls, created], per-method [sum, created, *bucket counts])
        self._series: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
        self._per_method: dict[str, list[float]] = {}

    def record(self, method: str, outcome: str, duration_s: float) -> None:
        series = self._series.get((method, outcome))
        if series is None:
            now = time.time()
            hist = self._per_method.setdefault(method, [0.0, now] + [0] * (len(_FAST) + 1))
            series = self._series[(method, outcome)] = ([0, now], hist)
        calls, hist = series
        calls[0] += 1
        hist[0] += duration_s
        hist[2 + bisect.bisect_left(_FAST, duration_s)] += 1  # the first bound >= duration

    def describe(self) -> list[Metric]:
        return list(self.collect())  # for the registry's name check: the family names

    def collect(self) -> Iterator[Metric]:
        calls = CounterMetricFamily(
            "hvagent_rpc_requests", "JSON-RPC verb calls", labels=["method", "outcome"]
        )
        for labels, ((count, created), _) in list(self._series.items()):
            calls.add_metric(labels, count, created=created)
        yield calls
        durations = HistogramMetricFamily(
            "hvagent_rpc_duration_seconds", "JSON-RPC verb duration", labels=["method"]
        )
        for method, (total, created, *counts) in list(self._per_method.items()):
            buckets = list(zip(_LE, itertools.accumulate(counts), strict=True))
            durations.add_metric([method], buckets, total)
            durations.samples.append(
                Sample(durations.name + "_created", {"method": method}, created)
            )
        yield durations


class Instruments:
    def __init__(self, registry: CollectorRegistry) -> None:
        r = registry
        self._rpc = _RpcCalls()
        r.register(self._rpc)
        self.power_operations = Counter(
            "hvagent_power_operations",
            "Finished power operations by kind, outcome and last stage (agent, acpi, forced)",
            ["kind", "outcome", "stage"],
            registry=r,
        )
        self.power_duration = Histogram(
            "hvagent_power_operation_duration_seconds", "Power operation duration",
            buckets=_SLOW, registry=r,
        )  # fmt: skip
        self.pending_power = Gauge(
            "hvagent_pending_power_operations", "Power operations in progress", registry=r
        )
        self.console_session_gauge = Gauge(
            "hvagent_console_sessions", "Open console sessions", ["vm", "console"], registry=r
        )
        self.ticket_expiry = Gauge(
            "hvagent_console_ticket_expiry_timestamp_seconds",
            "When the console ticket expires (Unix time)",
            ["vm", "console"],
            registry=r,
        )
        self.libvirt_calls = Histogram(
            "hvagent_libvirt_call_duration_seconds", "libvirt call duration", ["call"],
            buckets=_FAST, registry=r,
        )  # fmt: skip
        self.libvirt_timeouts = Counter(
            "hvagent_libvirt_call_timeouts",
            "libvirt calls that ran into [libvirt] call_timeout_s",
            ["call"],
            registry=r,
        )
        self.recovery_duration = Gauge(
            "hvagent_recovery_duration_seconds", "Duration of the last startup recovery",
            registry=r,
        )  # fmt: skip
        self.stomp_connections = Gauge(
            "hvagent_stomp_connections", "Open STOMP connections (after TLS)", registry=r
        )
        self.stomp_frames = Counter(
            "hvagent_stomp_frames", "STOMP frames by command and direction (in, out)",
            ["command", "direction"], registry=r,
        )  # fmt: skip
        self.stomp_subscriptions = Gauge(
            "hvagent_stomp_subscriptions", "Active STOMP subscriptions", registry=r
        )
        self.stomp_slow_consumer_closes = Counter(
            "hvagent_stomp_slow_consumer_closes",
            "STOMP connections closed for leaving too many bytes unread", registry=r,
        )  # fmt: skip
        self.tls_handshake_failures = Counter(
            "hvagent_tls_handshake_failures", "Failed TLS handshakes by reason", ["reason"],
            registry=r,
        )  # fmt: skip
        self._registry = r

    # -- recording --------------------------------------------------------------------------

    def rpc_finished(self, method: str, outcome: str, duration_s: float) -> None:
        self._rpc.record(label(method), label(outcome), duration_s)

    def libvirt_call(self, call: str, duration_s: float) -> None:
        self.libvirt_calls.labels(call).observe(duration_s)

    def libvirt_call_timed_out(self, call: str) -> None:
        self.libvirt_timeouts.labels(call).inc()

    def recovery_finished(self, duration_s: float) -> None:
        self.recovery_duration.set(duration_s)

    def power_operation_started(self) -> None:
        self.pending_power.inc()

    def power_operation_finished(
        self, kind: str, outcome: str, stage: str, duration_s: float
    ) -> None:
        self.pending_power.dec()
        self.power_operations.labels(kind, outcome, stage).inc()
        self.power_duration.observe(duration_s)

    def console_sessions(self, vm: str, console: str, count: int | None) -> None:
        _set_or_remove(self.console_session_gauge, (vm, console), count)

    def console_ticket(self, vm: str, console: str, expiry_epoch_s: float | None) -> None:
        """+Inf for a ticket without expiry (ttl <= 0)."""
        _set_or_remove(self.ticket_expiry, (vm, console), expiry_epoch_s)

    # -- read at collect time -----------------------------------------------------------------

    def watch(
        self,
        *,
        vm_statuses: Callable[[], Iterable[str]],
        libvirt_up: Callable[[], bool],
        subscribers: Callable[[], int],
    ) -> None:
        self._registry.register(_Live(vm_statuses, libvirt_up, subscribers))

    def watch_channels(self, rows: Callable[[], Iterable[ChannelRow]]) -> None:
        self._registry.register(_Channels(rows))


# (vm id, channel name, bytes drained (the stream's end offset), readers, log bytes on disk)
ChannelRow = tuple[str, str, int, int, int]


class _Channels(Collector):
    def __init__(self, rows: Callable[[], Iterable[ChannelRow]]) -> None:
        self._rows = rows

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        labels = ["vm", "channel"]
        drained = CounterMetricFamily(
            "hvagent_channel_bytes", "Bytes drained from a VM's channel (its log's end offset)",
            labels=labels,
        )  # fmt: skip
        readers = GaugeMetricFamily(
            "hvagent_channel_readers", "Open channel streams (WebSocket readers)", labels=labels
        )
        disk = GaugeMetricFamily(
            "hvagent_channel_log_bytes", "Bytes of a channel's log on disk", labels=labels
        )
        for vm, name, total, count, on_disk in self._rows():
            key = [label(vm), label(name)]
            drained.add_metric(key, total)
            readers.add_metric(key, count)
            disk.add_metric(key, on_disk)
        yield from (drained, readers, disk)


MAX_LABEL = 64


def label(value: str) -> str:
    """A label value as recorded: printable ASCII up to MAX_LABEL characters, else "invalid"."""
    if len(value) <= MAX_LABEL and value.isascii() and value.isprintable():
        return value
    return "invalid"


def _set_or_remove(gauge: Gauge, labels: tuple[str, ...], value: float | None) -> None:
    if value is None:
        with contextlib.suppress(KeyError):
            gauge.remove(*labels)
    else:
        gauge.labels(*labels).set(value)


STATUSES = tuple(str(s) for s in VmStatus)  # every status has a series, 0 when none


class _Live(Collector):
    def __init__(self, statuses, libvirt_up, subscribers) -> None:  # type: ignore[no-untyped-def]
        self._statuses = statuses
        self._up = libvirt_up
        self._subs = subscribers

    def describe(self):  # type: ignore[no-untyped-def]
        return []  # no collect() at registration time

    def collect(self):  # type: ignore[no-untyped-def]
        vms = GaugeMetricFamily("hvagent_vms", "VMs known to hvagent by status", labels=["status"])
        counts = _Counter(self._statuses())
        for status in (*STATUSES, *sorted(set(counts) - set(STATUSES))):
            vms.add_metric([status], counts.get(status, 0))
        yield vms
        yield GaugeMetricFamily(
            "hvagent_libvirt_up", "1 while the libvirt connection is alive", value=int(self._up())
        )
        yield GaugeMetricFamily(
            "hvagent_events_subscribers", "Open /events WebSockets", value=self._subs()
        )
