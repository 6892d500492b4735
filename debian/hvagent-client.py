#!/usr/bin/python3 -I
"""hvagent-client, the command-line client of hvagent (Debian package entry point).

/usr/lib/hvagent holds the agent package and the libraries bundled with it; it comes
first on sys.path so the bundled aiohttp wins over an older python3-aiohttp.
"""

import sys

sys.path.insert(0, "/usr/lib/hvagent")

from agent.cli import main

sys.exit(main())
