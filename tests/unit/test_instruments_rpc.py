"""The RPC families: the same exposition prometheus_client's Counter and Histogram give."""

import re

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from agent.metrics.instruments import _FAST, Instruments

CALLS = [
    ("Host.ping2", "ok", 0.00002),
    ("Host.ping2", "ok", 0.001),  # on a bucket bound: counted in that bucket
    ("VM.create", "ok", 3.0),
    ("VM.create", "error_4", 0.5),
    ("VM.getStats", "error_1", 100.0),  # above every bound: +Inf only
    ("Host.ping2", "ok", 0.0015),
]


def exposition(registry: CollectorRegistry) -> str:
    text = generate_latest(registry).decode()
    return re.sub(r"(_created\{[^}]*\}) \S+", r"\1 T", text)  # creation times differ


def test_rpc_metrics_expose_what_prometheus_counter_and_histogram_would():
    ours = CollectorRegistry(auto_describe=False)
    instruments = Instruments(ours)
    reference = CollectorRegistry(auto_describe=False)
    requests = Counter(
        "hvagent_rpc_requests", "JSON-RPC verb calls", ["method", "outcome"], registry=reference
    )
    duration = Histogram(
        "hvagent_rpc_duration_seconds", "JSON-RPC verb duration", ["method"],
        buckets=_FAST, registry=reference,
    )  # fmt: skip
    for method, outcome, seconds in CALLS:
        instruments.rpc_finished(method, outcome, seconds)
        requests.labels(method, outcome).inc()
        duration.labels(method).observe(seconds)
    expected = exposition(reference)
    got = exposition(ours).split("\n")
    assert "\n".join(line for line in got if "hvagent_rpc_" in line) + "\n" == expected
    assert 'hvagent_rpc_duration_seconds_bucket{le="0.001",method="Host.ping2"} 2.0' in expected


def test_rpc_family_names_are_registered():
    registry = CollectorRegistry(auto_describe=False)
    Instruments(registry)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Counter("hvagent_rpc_requests", "again", registry=registry)
