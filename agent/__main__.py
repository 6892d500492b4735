"""`python -m agent` runs the daemon, exactly as the `hvagent` command does."""

from agent.daemon import main

if __name__ == "__main__":
    raise SystemExit(main())
