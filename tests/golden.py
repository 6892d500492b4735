"""Domain XML goldens: tests/data/domxml/<case>.json (request) + <case>.xml (expected).

A case file is `{"params": vmParams, "config": {VirtConfig overrides}, "devices": [module
names this case covers]}`; `vmId` defaults to the fixed VM id below. Comparison is semantic:
both sides are parsed without blank text and canonicalised (C14N 2.0).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from lxml import etree

from agent import domxml
from agent.config import VirtConfig
from agent.domxml.metadata import VmMetadata
from agent.intake import vmparams

DIR = Path(__file__).parent / "data" / "domxml"
VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
BASE_CONFIG = {"domain_type": "qemu", "console_log_dir": "/var/log/hvagent/console"}
# The host's display networks the goldens see (agent/hostnet.py's seam).
NETWORKS = {"vmDisplay": "192.0.2.10"}


def cases() -> list[str]:
    return sorted(p.stem for p in DIR.glob("*.json"))


def load(case: str) -> dict:
    return json.loads((DIR / f"{case}.json").read_text())


def build(case: str) -> str:
    data = load(case)
    params = {"vmId": str(VM), "memSize": 256, "vmName": case, **data["params"]}
    cfg = VirtConfig(**{**BASE_CONFIG, **data.get("config", {})})
    s = vmparams.from_params(VM, params, cfg, NETWORKS.get)
    meta = VmMetadata(launch_paused=s.launch_paused, custom=s.custom)
    return domxml.to_string(domxml.build_domain(s, meta))


def canonical(text: str) -> str:
    root = domxml.parse(text)
    return etree.tostring(root, method="c14n2", strip_text=True).decode()
