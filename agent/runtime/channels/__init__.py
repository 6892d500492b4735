"""Channels: the virtio-serial output of a VM, drained from boot and served to any reader.

hvagent is the one client of each channel socket QEMU binds (agent/domxml/devices/channel.py
chooses the path). `drain.py` connects as soon as the domain starts (retrying while QEMU
creates the socket, reconnecting while the domain lives) and hands every chunk to the
channel (`channel.py`): its `SegmentLog` (`log.py`), an append-only on-disk log (segment
files named by their first byte's offset, size-capped, kept after the VM is down and after
VM.destroy), plus a
bounded in-memory ring (`ring.py`) for readers that follow live, and the marker scanner
(`markers.py`). `vm.py` holds one VM's channels. Readers never touch the socket: they read
the ring or the log, so a slow reader never slows the drain. Bytes are never decoded.
"""

from agent.runtime.channels.channel import Channel
from agent.runtime.channels.log import Chunk, SegmentLog
from agent.runtime.channels.vm import VmChannels

__all__ = ["Channel", "Chunk", "SegmentLog", "VmChannels"]
