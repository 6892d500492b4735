"""Fuzzed JSON-RPC against a real hvagent process on the test driver (issue 15, "Proven").

Properties (tests/fuzzing.py): every reply is valid JSON-RPC, none is -32603, the daemon
stays alive and ready, /metrics stays 200, and no domain is left behind. CI runs a bounded
number of requests (HVAGENT_FUZZ_EXAMPLES, default 300; one pass); `make fuzz` runs 10,000
per pass, three passes (HVAGENT_FUZZ_PASSES), and prints the daemon's RSS after each.
"""

from __future__ import annotations

import os
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzzing import Target, requests

EXAMPLES = int(os.environ.get("HVAGENT_FUZZ_EXAMPLES", "300"))
PASSES = int(os.environ.get("HVAGENT_FUZZ_PASSES", "1"))


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    t = Target(tmp_path_factory.mktemp("fuzz"))
    yield t
    assert t.stop() == 0, t.log.read_text()[-3000:]


def test_fuzzed_requests_keep_every_property(target):
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(st.data())
    def one(data):
        target.send(data.draw(requests()))
        if target.requests % 100 == 0:
            target.check_health()

    for n in range(PASSES):
        start, started = target.requests, time.monotonic()
        one()
        target.check_health()
        target.clean_up()
        print(
            f"fuzz pass {n + 1}: {target.requests - start} requests in "
            f"{time.monotonic() - started:.0f} s, 0 internal errors, daemon RSS "
            f"{target.rss_kib() / 1024:.1f} MiB",
            flush=True,
        )
