"""he-start's decision table (hosted-engine --vm-start): absent -> create; Down or Paused ->
destroy, then create; any other status -> refused, nothing called after getStats."""

from __future__ import annotations

import argparse
import asyncio

import pytest

from agent import cli_he
from tests.intake_golden import DIR, HE_FULL_ID, he_full


def run(stats_reply):
    calls = []

    async def call(method, params):
        calls.append(method)
        if method == "VM.getStats":
            return stats_reply
        return {"result": {"vmId": params["vmID"]}}

    reply = asyncio.run(cli_he.he_start(call, HE_FULL_ID, {"ovf": "x"}))
    return calls, reply


@pytest.mark.parametrize(
    "stats,calls",
    [
        ({"error": {"code": 1}}, ["VM.getStats", "VM.create"]),
        ({"result": [{"status": "Down"}]}, ["VM.getStats", "VM.destroy", "VM.create"]),
        ({"result": [{"status": "Paused"}]}, ["VM.getStats", "VM.destroy", "VM.create"]),
        ({"result": [{"status": "Up"}]}, ["VM.getStats"]),
        ({"result": [{"status": "Powering up"}]}, ["VM.getStats"]),
        ({"error": {"code": 99}}, ["VM.getStats"]),
    ],
)
def test_he_start(stats, calls):
    got, reply = run(stats)
    assert got == calls
    if calls == ["VM.getStats"] and "result" in stats:
        assert reply["error"]["data"]["reason"] == (
            f"VM exists and its status is {stats['result'][0]['status']}"
        )


def test_vm_id_comes_from_the_file(tmp_path):
    (tmp_path / "a.ovf").write_text(he_full())
    args = argparse.Namespace(ovf=tmp_path / "a.ovf", vm_conf=None, ova=None, vm_id=None)
    assert cli_he.request(args)[0] == HE_FULL_ID
    args = argparse.Namespace(
        ovf=None, vm_conf=DIR / "setup_vm_test_xml.conf", ova=None, vm_id=None
    )
    assert cli_he.request(args)[0] == "dbc9d98d-4a5c-4e4e-bc9b-621b189709fd"  # the XML's
