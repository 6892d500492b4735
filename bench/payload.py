"""Payload ISO build time for a typical cloud-init payload, in ms per image.

A hosted-engine-setup style NoCloud payload (`cloudInit`: a ~4 KiB #cloud-config user-data
with write_files and runcmd, a meta-data with a static network block) goes through
`agent.intake.payload.find` (validation) and `agent.runtime.payloads.write` (pycdlib, temp
file, fsync, rename) into a temporary directory; the image is removed after each round.
Prints the median and the 90th percentile. Target: under 50 ms.
Run: .venv/bin/python bench/payload.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))

from agent.intake import payload
from agent.runtime import payloads

VM = uuid.UUID("6f5c3b8e-8e0b-4d55-9c43-0d0e3f7a9a01")
USER_DATA = (
    "#cloud-config\nssh_pwauth: True\nchpasswd:\n  list: |\n    root:secret\n  expire: False\n"
    "bootcmd:\n"
    + "".join(f" - echo 192.168.1.{i} host{i}.example.com >> /etc/hosts\n" for i in range(40))
    + "write_files:\n - path: /root/heanswers.conf\n   owner: root:root\n   permissions: '0640'\n"
    "   content: |\n"
    + "".join(f"     OVESETUP_CONFIG/key{i}=str:value{i}\n" for i in range(60))
    + "runcmd:\n - /usr/bin/engine-setup --offline --config-append=/root/heanswers.conf\n"
)
META_DATA = (
    f"instance-id: {VM}\nlocal-hostname: engine.example.com\nnetwork-interfaces: |\n"
    "  auto eth0\n  iface eth0 inet static\n  address 192.168.1.10\n  netmask 255.255.255.0\n"
)
PARAMS = {"vmId": str(VM), "cloudInit": {"userData": USER_DATA, "metaData": META_DATA}}
ROUNDS = 200


def main() -> None:
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):
            start = time.perf_counter()
            found = payload.find(PARAMS, 10 << 20)
            paths = payloads.write(tmp, VM, found.images)
            times.append(time.perf_counter() - start)
            payloads.remove(paths)
    times.sort()
    print(
        f"cloud-init ISO ({len(USER_DATA)} + {len(META_DATA)} bytes): "
        f"median {statistics.median(times) * 1000:.2f} ms, "
        f"p90 {times[int(ROUNDS * 0.9)] * 1000:.2f} ms over {ROUNDS} builds (target < 50 ms)"
    )


if __name__ == "__main__":
    main()
