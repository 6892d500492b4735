"""GET /metrics on the test driver: a real scrape parsed with prometheus-client's parser."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import uuid
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent import config
from tests.integration.conftest import SHARED_URI, Daemon, make_config

pytestmark = pytest.mark.asyncio(loop_scope="session")

CONTRIB = Path(__file__).parents[2] / "contrib"


_SUFFIXES = {
    "counter": ("", "_total"),
    "histogram": ("", "_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}


async def scrape(session, base) -> dict[str, list]:
    async with session.get(f"{base}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    samples: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        # every name a query may use, even for a family with no children yet
        for suffix in _SUFFIXES.get(family.type, ("",)):
            samples.setdefault(family.name + suffix, [])
        for s in family.samples:
            samples.setdefault(s.name, []).append(s)
    return samples


def labelled(samples, name, **labels):
    return [
        s for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())
    ]


async def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@pytest.fixture
def fast_sampler(tmp_path):
    cfg = make_config(tmp_path, SHARED_URI)
    return dataclasses.replace(
        cfg, metrics=config.MetricsConfig(sample_interval_s=0.1, sample_timeout_s=5.0)
    )


async def test_scrape_reports_vms_the_test_created(fast_sampler, session, virconn):
    from tests.client import RpcClient

    d = Daemon(fast_sampler)
    try:
        rpc = RpcClient(d.base, session)
        await rpc.wait_ready(30)
        vm_id = str(uuid.uuid4())
        name = f"met-{vm_id[:8]}"
        params = {
            "vmId": vm_id,
            "vmName": name,
            "memSize": 96,
            "smp": 2,
            "devices": [
                {"type": "graphics", "device": "spice"},
                {"type": "graphics", "device": "vnc"},
            ],
        }
        await rpc.call("VM.create", vmID=vm_id, vmParams=params)
        err = await rpc.error("VM.getStats", vmID=str(uuid.uuid4()))
        assert err["code"] == 1

        async def sampled():
            s = await scrape(session, d.base)
            # a round may catch the domain defined but not yet started (state 5, shut off)
            running = labelled(s, "libvirt_domain_info_vstate", uuid=vm_id)
            return s if running and running[0].value == 1 else None

        s = await wait_for(sampled, 10)
        (state,) = labelled(s, "libvirt_domain_info_vstate", uuid=vm_id)
        assert state.labels["domain"] == name and state.value == 1  # VIR_DOMAIN_RUNNING
        (flag,) = labelled(s, "libvirt_domain_timed_out", uuid=vm_id)
        assert flag.value == 0
        (age,) = s["hvagent_sample_age_seconds"]
        assert 0 <= age.value < 5
        # hvagent's own instruments
        ok = labelled(s, "hvagent_rpc_requests_total", method="VM.create", outcome="ok")
        assert ok and ok[0].value == 1
        miss = labelled(s, "hvagent_rpc_requests_total", method="VM.getStats", outcome="error_1")
        assert miss and miss[0].value == 1
        assert labelled(s, "hvagent_rpc_duration_seconds_count", method="VM.create")[0].value == 1
        up = {x.labels["status"]: x.value for x in s["hvagent_vms"]}
        assert up["Up"] >= 1 and set(up) >= {"WaitForLaunch", "Up", "Paused", "Down"}
        assert s["hvagent_libvirt_up"][0].value == 1
        assert s["hvagent_recovery_duration_seconds"][0].value >= 0
        assert s["hvagent_events_subscribers"][0].value == 0
        calls = {x.labels["call"] for x in s["hvagent_libvirt_call_duration_seconds_count"]}
        assert "getAllDomainStats" in calls
        # every console of a running VM has a session count (no client connects here)
        sessions = {
            x.labels["console"]: x.value for x in labelled(s, "hvagent_console_sessions", vm=vm_id)
        }
        assert sessions == {"spice": 0, "vnc": 0}
        # families with no children until something happens: present all the same
        for family in (
            "hvagent_power_operations",
            "hvagent_power_operation_duration_seconds",
            "hvagent_pending_power_operations",
            "hvagent_console_ticket_expiry_timestamp_seconds",
        ):
            assert family in s, family

        await rpc.call("VM.destroy", vmID=vm_id)

        async def gone():
            s = await scrape(session, d.base)
            return s if not labelled(s, "libvirt_domain_info_vstate", uuid=vm_id) else None

        s = await wait_for(gone, 10)
        assert labelled(s, "hvagent_console_sessions", vm=vm_id) == []
    finally:
        assert await d.stop() == 0


async def test_contrib_uses_only_metrics_a_scrape_has(fast_sampler, session):
    from tests.client import RpcClient

    d = Daemon(fast_sampler)
    try:
        rpc = RpcClient(d.base, session)
        await rpc.wait_ready(30)
        s = await scrape(session, d.base)
    finally:
        assert await d.stop() == 0
    used = contrib_metric_names()
    assert used, "contrib files reference no metrics"
    # every name a Prometheus query could use: families and their sample names
    missing = sorted(n for n in used if n not in s)
    assert not missing, missing


def contrib_metric_names() -> set[str]:
    import re

    texts = [(CONTRIB / "prometheus" / "hvagent-alerts.yml").read_text()]
    dashboard = json.loads((CONTRIB / "grafana" / "hvagent-dashboard.json").read_text())

    def exprs(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "expr" and isinstance(v, str):
                    yield v
                else:
                    yield from exprs(v)
        elif isinstance(node, list):
            for v in node:
                yield from exprs(v)

    texts += list(exprs(dashboard))
    pattern = re.compile(r"\b((?:hvagent|libvirt)_[a-z_]+)\b")
    return {m for t in texts for m in pattern.findall(t)}
