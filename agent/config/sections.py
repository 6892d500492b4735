"""Configuration of the VM runtime and the host: libvirt, VMs and their consoles, power
operations, host access, payload disks, hvagent's state and logging."""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath


@dataclass(frozen=True)
class LibvirtConfig:
    uri: str = "qemu:///system"
    call_threads: int = 8
    # A lost connection is reopened (verbs answer 40 meanwhile, /readyz is 503), and a
    # libvirtd that is down at start is waited for. false: crash-only, exit 1 and let
    # systemd restart hvagent into recovery.
    reconnect: bool = True
    # Every libvirt call is given this long; past it the verb answers 40 (counted in
    # hvagent_libvirt_call_timeouts_total).
    call_timeout_s: float = 60.0
    # libvirtd is asked a cheap question this often; unanswered for probe_timeout_s, it is
    # taken as hung: /readyz turns 503 and verbs needing libvirt answer 40 at once.
    probe_interval_s: float = 2.0
    probe_timeout_s: float = 5.0

    def __post_init__(self) -> None:
        if not self.uri:
            raise ValueError("must not be empty")
        if self.call_threads < 1:
            raise ValueError("call_threads must be at least 1")
        for name in ("call_timeout_s", "probe_interval_s", "probe_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive")


@dataclass(frozen=True)
class VirtConfig:
    domain_type: str = "kvm"
    console_log_dir: str = "/var/log/hvagent/console"
    # Machine type used when vmParams has no emulatedMachine; empty = libvirt's default.
    default_machine: str = ""
    # Address consoles (SPICE/VNC) listen on unless the device names a displayIp or
    # displayNetwork. Consoles start locked (expired ticket) until VM.setTicket.
    graphics_listen: str = "0.0.0.0"
    # SPICE TLS: must match libvirt's qemu.conf spice_tls (certificates live there). When
    # true, SPICE consoles get a TLS port and defaultMode='secure', and spiceSecureChannels
    # are honoured; when false, asking for secure channels is refused.
    spice_tls: bool = False
    # Where disk volumes of VMs created from an OVF, vm.conf or OVA live, in VDSM's
    # file-domain layout <image_root>/<domainID>/images/<imageID>/<volumeID>.
    image_root: str = "/var/lib/hvagent/images"
    # Seconds between the guest's balloon-driver statistics (<memballoon><stats period>),
    # which VM stats' memoryStats report; 0 = not asked (memoryStats stays empty).
    balloon_stats_period_s: int = 5
    # Console sockets (devices' specParams.enableSocket) are <console_socket_dir>/<vmId>.sock,
    # where ovirt-vmconsole-host looks for them. Also a chardev root of the host-access policy.
    console_socket_dir: str = "/var/run/ovirt-vmconsole-console"
    # Once the VM runs, its console socket is made group-readable/-writable and given to this
    # group (when the host has it), so ovirt-vmconsole-host can connect; "" = permissions only.
    console_socket_group: str = "ovirt-vmconsole"
    # libvirt's qemu.conf has vnc_sasl = 1: engine XML may then carry a VNC console without
    # passwdValidTo (an unlocked console); otherwise such XML is refused (code 9), as VDSM.
    vnc_sasl: bool = False
    # VM.hotunplugDisk/hotunplugNic wait this long for the guest to release the device (the
    # live XML no longer has it) before they answer 46/50 (VDSM's hotunplug_timeout).
    hotunplug_timeout_s: float = 30.0
    # SMBIOS system entries of VMs built from vmParams (<sysinfo>, as VDSM writes them);
    # serial is vmParams.serial or the VM id, uuid the VM id. An empty value is left out.
    smbios_manufacturer: str = "oVirt"
    smbios_product: str = "oVirt Node"
    smbios_version: str = ""
    smbios_family: str = "oVirt"

    def __post_init__(self) -> None:
        if not 0 <= self.balloon_stats_period_s <= 86400:
            raise ValueError("balloon_stats_period_s must be between 0 and 86400")
        if not 0 < self.hotunplug_timeout_s <= 3600:
            raise ValueError("hotunplug_timeout_s must be more than 0 and at most 3600")
        if not self.image_root.startswith("/"):
            raise ValueError("image_root must be an absolute path")
        if not self.console_socket_dir.startswith("/"):
            raise ValueError("console_socket_dir must be an absolute path")
        if len(self.console_socket_path(uuid.UUID(int=0)).encode()) > 107:
            raise ValueError("console_socket_dir is too long for a unix socket path")
        if self.domain_type not in ("kvm", "qemu"):
            raise ValueError(f"domain_type must be 'kvm' or 'qemu', not {self.domain_type!r}")
        if not self.console_log_dir.startswith("/"):
            raise ValueError("console_log_dir must be an absolute path")

    def console_log_path(self, vm_id: uuid.UUID) -> str:
        """Where the guest's serial console is logged (virtlogd writes it)."""
        return f"{_normalized_dir(self.console_log_dir)}/{vm_id}.log"

    def console_socket_path(self, vm_id: uuid.UUID) -> str:
        """The console's unix socket when the engine asks for one (enableSocket), at the
        path ovirt-vmconsole expects."""
        return f"{_normalized_dir(self.console_socket_dir)}/{vm_id}.sock"


@functools.lru_cache(maxsize=16)
def _normalized_dir(directory: str) -> str:
    """A configured directory as pathlib spells it, without a trailing slash (once per
    directory: the paths above are built on every VM.create)."""
    return str(PurePosixPath(directory)).rstrip("/")


@dataclass(frozen=True)
class LoggingConfig:
    level: str = "INFO"

    def __post_init__(self) -> None:
        if self.level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError(f"level must be DEBUG, INFO, WARNING or ERROR, not {self.level!r}")


@dataclass(frozen=True)
class StateConfig:
    # hvagent's own state that libvirt cannot hold: the records of VMs that went Down
    # without a domain (their start failed), kept until VM.destroy.
    dir: str = "/var/lib/hvagent"

    def __post_init__(self) -> None:
        if not self.dir.startswith("/"):
            raise ValueError("dir must be an absolute path")


@dataclass(frozen=True)
class PowerConfig:
    # VM.shutdown defaults when the caller omits timeout/delay (VDSM's values).
    shutdown_timeout_s: float = 120.0
    shutdown_delay_s: float = 30.0
    # The ACPI power button is re-sent this often during the ACPI stage.
    acpi_retry_s: float = 10.0
    # A guest-agent shutdown/reboot request that takes longer counts as failed.
    agent_command_timeout_s: float = 5.0
    # A console disconnect action (VM.updateDevice disconnectAction) waits at least this long
    # for a client to come back; absorbs SPICE clients reopening channels on the TLS port.
    console_disconnect_grace_s: float = 5.0

    def __post_init__(self) -> None:
        for name in ("shutdown_timeout_s", "shutdown_delay_s", "console_disconnect_grace_s"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.acpi_retry_s <= 0 or self.agent_command_timeout_s <= 0:
            raise ValueError("acpi_retry_s and agent_command_timeout_s must be positive")


@dataclass(frozen=True)
class GuestAgentConfig:
    # Each running VM's guest agent is asked for guest info (guestIPs, guestOsInfo, ...)
    # this often, outside the VM's command queue; a silent agent is asked less and less
    # often (doubling up to backoff_max_s) and its last answer is reported as stale.
    poll_interval_s: float = 15.0
    # libvirt's agent response timeout for these queries (whole seconds).
    timeout_s: int = 5
    backoff_max_s: float = 300.0

    def __post_init__(self) -> None:
        if self.poll_interval_s <= 0 or self.backoff_max_s < self.poll_interval_s:
            raise ValueError("poll_interval_s must be positive and at most backoff_max_s")
        if not 1 <= self.timeout_s <= 3600:
            raise ValueError("timeout_s must be between 1 and 3600")


@dataclass(frozen=True)
class HostAccessConfig:
    """[host_access]: what a VM may touch on the host; enforced by agent/intake/hostaccess.py."""

    # Disk, cdrom and floppy images, kernels and initrds must resolve (symlinks followed)
    # under one of these or [virt] image_root. /rhev/data-center: oVirt storage domains as an
    # engine's XML (hosted engine included) names them.
    image_roots: tuple[str, ...] = ("/var/lib/libvirt/images", "/rhev/data-center")
    # Block devices (paths under /dev/) only from these prefixes.
    block_prefixes: tuple[str, ...] = ("/dev/disk/by-id/", "/dev/mapper/")
    # vmParams.ova (an appliance OVA to extract) under these or the image roots; oVirt's
    # engine-appliance package installs its OVA in the first.
    appliance_roots: tuple[str, ...] = ("/usr/share/ovirt-engine-appliance",)
    # <loader> and <nvram> (engine XML) under these.
    firmware_roots: tuple[str, ...] = (
        "/usr/share/OVMF",
        "/usr/share/AAVMF",
        "/usr/share/edk2",
        "/usr/share/qemu",
        "/usr/share/seabios",
        "/var/lib/libvirt/qemu/nvram",
    )
    # Chardev file/pipe/dev/unix sources and <log file> under these (plus [virt]
    # console_log_dir).
    chardev_roots: tuple[str, ...] = (
        "/run/hvagent",
        "/var/log/hvagent",
        "/var/lib/libvirt/qemu",
        "/run/libvirt/qemu",
    )
    # Engine XML may pass host devices (<hostdev>, TPM passthrough), share host directories
    # (<filesystem>), or turn confinement off (<seclabel type='none'>) only when enabled.
    allow_hostdev: bool = False
    allow_filesystem: bool = False
    allow_seclabel_none: bool = False

    def __post_init__(self) -> None:
        for name in (
            "image_roots",
            "appliance_roots",
            "block_prefixes",
            "firmware_roots",
            "chardev_roots",
        ):
            for path in getattr(self, name):
                if not isinstance(path, str) or not path.startswith("/"):
                    raise ValueError(f"{name} must hold absolute paths")


@dataclass(frozen=True)
class PayloadConfig:
    # Payload disk images (vmPayload, PAYLOAD:, cloudInit) built for VM.create; each is
    # removed when its VM is destroyed or goes down.
    dir: str = "/run/hvagent/payload"
    # The decoded content of one VM.create's payloads, all images together.
    max_bytes: int = 10 * 1024 * 1024

    def __post_init__(self) -> None:
        if not self.dir.startswith("/"):
            raise ValueError("dir must be an absolute path")
        if not 0 < self.max_bytes <= 1 << 30:
            raise ValueError("max_bytes must be between 1 and 1073741824")


@dataclass(frozen=True)
class ChannelsConfig:
    # Virtio-serial unix channels (vmParams channel devices, engine XML <channel type='unix'>,
    # the hosted-engine setup channel): QEMU binds each socket under `dir`/<vmId>/ and hvagent
    # is its one client, draining it from boot into a ring buffer and a log per VM and channel.
    dir: str = "/run/hvagent/channels"
    # The logs, kept after the VM is down and after VM.destroy (post-mortem); empty:
    # <[state] dir>/channels.
    log_dir: str = ""
    # The most bytes one channel's log keeps on disk; past it the oldest quarter is dropped.
    log_max_bytes: int = 64 * 1024 * 1024
    # The most recent bytes of each channel kept in memory for readers that follow live.
    ring_bytes: int = 256 * 1024
    # Byte strings reported in VM.getStats and as an event when a channel carries them.
    markers: tuple[str, ...] = (
        "HE_APPLIANCE_ENGINE_SETUP_SUCCESS",
        "HE_APPLIANCE_ENGINE_SETUP_FAIL",
    )

    def __post_init__(self) -> None:
        for name in ("dir", "log_dir"):
            value = getattr(self, name)
            if value and not value.startswith("/"):
                raise ValueError(f"{name} must be an absolute path")
        # <dir>/<36-char vmId>/<16-char name> must fit a socket address (107 bytes).
        if len(self.dir.rstrip("/").encode()) > MAX_CHANNEL_DIR:
            raise ValueError(f"dir must be at most {MAX_CHANNEL_DIR} bytes (socket path limit)")
        if not 4096 <= self.log_max_bytes <= 1 << 40:
            raise ValueError("log_max_bytes must be between 4096 and 1099511627776")
        if not 4096 <= self.ring_bytes <= 64 << 20:
            raise ValueError("ring_bytes must be between 4096 and 67108864")
        if len(self.markers) > 32:
            raise ValueError("markers: at most 32")
        for marker in self.markers:
            if not (0 < len(marker) <= 256 and marker.isascii() and marker.isprintable()):
                raise ValueError("markers must be printable ASCII, 1 to 256 characters")

    def logs(self, state_dir: str) -> str:
        return self.log_dir or state_dir.rstrip("/") + "/channels"


MAX_CHANNEL_DIR = 107 - 1 - 36 - 1 - 24
