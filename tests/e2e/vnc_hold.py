"""Hold one authenticated VNC session open until stdin closes (a real client for e2e tests).

Usage: python -m tests.e2e.vnc_hold PORT  (the password is read from the first stdin line,
so it never shows in a process listing). Prints READY once a frame was received, then waits
for EOF on stdin and disconnects. Exit 0 on success, 1 when the server refused us.
"""

from __future__ import annotations

import sys

from vncdotool import api


def main() -> int:
    port = int(sys.argv[1])
    password = sys.stdin.readline().rstrip("\n")
    try:
        client = api.connect(f"127.0.0.1::{port}", password=password, timeout=30)
        client.refreshScreen()
    except Exception as exc:  # the library raises several kinds on a refused login
        print(f"REFUSED {type(exc).__name__}", flush=True)
        api.shutdown()
        return 1
    print("READY", flush=True)
    sys.stdin.read()
    client.disconnect()
    api.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
