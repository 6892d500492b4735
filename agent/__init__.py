"""hvagent: a host-side VM agent speaking VDSM's JSON-RPC verbs on top of libvirt."""

__version__ = "0.1.0"
