"""asyncio orchestration: VM owners, the registry, recovery, the status bus, host facts.

Sees `virt.port` only, never the libvirt adapter; the daemon hands the adapter in.
"""
