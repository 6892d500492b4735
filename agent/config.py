"""hvagent's configuration: frozen dataclasses and a strict TOML loader.

`load(path)` reads one TOML file (plus `<file>.d/*.toml` drop-ins in lexical order) over the
built-in defaults and returns a `Config`. Unknown sections or keys and values of the wrong type
stop startup with a `ConfigError` naming the file and the key: a typo must never silently fall
back to a default. No module reads configuration at import time; the daemon passes `Config`
objects down to constructors. Every key is documented, with its default, in conf/hvagent.toml.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import tomllib
import uuid
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from agent.payload_config import PayloadConfig

DEFAULT_PATH = Path("/etc/hvagent/hvagent.toml")


class ConfigError(Exception):
    """A configuration file or override is invalid; the message names file and key."""


@dataclass(frozen=True)
class RpcConfig:
    # Plain HTTP: loopback only unless `insecure` (the engine port 54321 is [stomp]'s).
    listen: str = "127.0.0.1:54322"
    # Local Unix socket (same HTTP endpoints; hvagent-client's default); "" disables it.
    socket: str = "/run/hvagent/hvagent.sock"
    # Group owning the socket (mode 0660); "" keeps the daemon's own group (root).
    socket_group: str = ""
    # Allow `listen` on a non-loopback address: plain HTTP, no authentication.
    insecure: bool = False
    # A connection that has not sent a whole request head this long after it opened or after
    # its last response is closed (idle and slow clients); aiohttp's keep-alive timeout.
    idle_timeout_s: float = 15.0
    # A request body not received whole in this time is answered 408.
    body_timeout_s: float = 30.0
    # Open HTTP connections, both listeners together; past it a new one gets 503 and is closed.
    max_connections: int = 512

    def __post_init__(self) -> None:
        split_listen(self.listen)
        if self.idle_timeout_s <= 0 or self.body_timeout_s <= 0:
            raise ValueError("idle_timeout_s and body_timeout_s must be positive")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        if self.socket and not self.socket.startswith("/"):
            raise ValueError("socket must be an absolute path or empty")

    @property
    def host(self) -> str:
        return split_listen(self.listen)[0]

    @property
    def port(self) -> int:
        return split_listen(self.listen)[1]


@dataclass(frozen=True)
class StompConfig:
    # HOST:PORT of the engine transport (STOMP 1.2, JSON-RPC); "" disables it. 54321 is
    # the port the engine is configured with by default.
    listen: str = "0.0.0.0:54321"
    # Mutual TLS per [tls]. false: plain TCP, refused off loopback unless `insecure`.
    tls: bool = True
    insecure: bool = False
    # Hard frame limits; a violation gets an ERROR frame and the connection is closed.
    max_frame_bytes: int = 32 * 1024 * 1024
    max_headers: int = 64
    max_header_bytes: int = 64 * 1024
    # A consumer with more unsent bytes than this is closed (and counted).
    max_pending_bytes: int = 16 * 1024 * 1024
    # Requests running at once per connection; past it, the connection is not read.
    max_in_flight: int = 32
    # After a burst of frames, one "\n" once the connection was idle this long (the
    # engine's Java client can leave a frame unread until more bytes arrive); 0 disables.
    nudge_ms: int = 20

    def __post_init__(self) -> None:
        if self.listen:
            split_listen(self.listen)
        for name in ("max_frame_bytes", "max_headers", "max_header_bytes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.max_pending_bytes < 64 * 1024 or self.max_in_flight < 1 or self.nudge_ms < 0:
            raise ValueError(
                "max_pending_bytes must be >= 65536, max_in_flight >= 1, nudge_ms >= 0"
            )


@dataclass(frozen=True)
class TlsConfig:
    # PEM files, VDSM's paths: the CA that signs engine (client) certificates, and this
    # host's certificate and key. SIGHUP re-reads them for new connections.
    ca: str = "/etc/pki/vdsm/certs/cacert.pem"
    cert: str = "/etc/pki/vdsm/certs/vdsmcert.pem"
    key: str = "/etc/pki/vdsm/keys/vdsmkey.pem"
    handshake_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.handshake_timeout_s <= 0:
            raise ValueError("handshake_timeout_s must be positive")


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

    def __post_init__(self) -> None:
        if not self.image_root.startswith("/"):
            raise ValueError("image_root must be an absolute path")
        if self.domain_type not in ("kvm", "qemu"):
            raise ValueError(f"domain_type must be 'kvm' or 'qemu', not {self.domain_type!r}")
        if not self.console_log_dir.startswith("/"):
            raise ValueError("console_log_dir must be an absolute path")

    def console_log_path(self, vm_id: uuid.UUID) -> str:
        """Where the guest's serial console is logged (virtlogd writes it)."""
        return str(PurePosixPath(self.console_log_dir) / f"{vm_id}.log")

    def console_socket_path(self, vm_id: uuid.UUID) -> str:
        """The unix socket of the extra virtio console, when the engine asks for one."""
        return str(PurePosixPath(self.console_log_dir) / f"{vm_id}.sock")


@dataclass(frozen=True)
class MetricsConfig:
    # Seconds between libvirt bulk-stats rounds (GET /metrics serves the latest round).
    sample_interval_s: float = 15.0
    # A round longer than this is abandoned; the previous numbers stay, flagged timed out.
    sample_timeout_s: float = 10.0
    # HOST:PORT of a read-only plain HTTP listener with /metrics, /healthz and /readyz only
    # (Prometheus on a management network); "" = off. No verbs: allowed off loopback.
    listen: str = ""

    def __post_init__(self) -> None:
        if self.listen:
            split_listen(self.listen)
        if self.sample_interval_s <= 0:
            raise ValueError("sample_interval_s must be positive")
        if self.sample_timeout_s <= 0:
            raise ValueError("sample_timeout_s must be positive")


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
class HostAccessConfig:
    """[host_access]: what a VM may touch on the host; enforced by agent/intake/hostaccess.py."""

    # Disk, cdrom and floppy images, kernels and initrds must resolve (symlinks followed)
    # under one of these or [virt] image_root. /rhev/data-center: oVirt storage domains as an
    # engine's XML (hosted engine included) names them.
    image_roots: tuple[str, ...] = ("/var/lib/libvirt/images", "/rhev/data-center")
    # Block devices (paths under /dev/) only from these prefixes.
    block_prefixes: tuple[str, ...] = ("/dev/disk/by-id/", "/dev/mapper/")
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
        for name in ("image_roots", "block_prefixes", "firmware_roots", "chardev_roots"):
            for path in getattr(self, name):
                if not isinstance(path, str) or not path.startswith("/"):
                    raise ValueError(f"{name} must hold absolute paths")


@dataclass(frozen=True)
class Config:
    rpc: RpcConfig = field(default_factory=RpcConfig)
    libvirt: LibvirtConfig = field(default_factory=LibvirtConfig)
    virt: VirtConfig = field(default_factory=VirtConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    power: PowerConfig = field(default_factory=PowerConfig)
    state: StateConfig = field(default_factory=StateConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    stomp: StompConfig = field(default_factory=StompConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    host_access: HostAccessConfig = field(default_factory=HostAccessConfig)
    payload: PayloadConfig = field(default_factory=PayloadConfig)

    @classmethod
    def defaults(cls) -> Config:
        return cls()


def split_listen(listen: str) -> tuple[str, int]:
    """'HOST:PORT' (IPv6 as '[::1]:PORT') -> (host, port); ValueError when malformed."""
    host, sep, port_s = listen.rpartition(":")
    if not sep or not host or not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise ValueError(f"listen must be HOST:PORT, not {listen!r}")
    return host.strip("[]"), int(port_s)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_secure(cfg: Config) -> None:
    """Refuse a plain (unauthenticated) TCP listener off loopback unless the config says so."""
    if not cfg.rpc.insecure and not is_loopback(cfg.rpc.host):
        raise ConfigError(
            f"[rpc] listen = {cfg.rpc.listen!r}: plain HTTP without authentication on a "
            "non-loopback address; bind it to 127.0.0.1, or set [rpc] insecure = true"
        )
    stomp = cfg.stomp
    plain = stomp.listen and not stomp.tls and not stomp.insecure
    if plain and not is_loopback(split_listen(stomp.listen)[0]):
        raise ConfigError(
            f"[stomp] listen = {stomp.listen!r} with tls = false: plain STOMP on a "
            "non-loopback address; set [stomp] tls = true, or [stomp] insecure = true"
        )


def load(path: Path | None, overrides: dict[str, Any] | None = None) -> Config:
    """Read `path` (None: DEFAULT_PATH if it exists, else built-in defaults) and its drop-ins.

    `overrides` maps 'section.key' to a value and wins over every file (command line).
    """
    layers: list[tuple[str, dict[str, Any]]] = []
    if path is None and DEFAULT_PATH.exists():
        path = DEFAULT_PATH
    if path is not None:
        layers.append((str(path), _read_toml(path)))
        dropin_dir = path.with_name(path.name + ".d")
        if dropin_dir.is_dir():
            layers += [(str(p), _read_toml(p)) for p in sorted(dropin_dir.glob("*.toml"))]
    if overrides:
        layers.append(("command line", _nest(overrides)))
    cfg = _merge(Config.defaults(), layers)
    check_secure(cfg)
    return cfg


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def _nest(overrides: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, dict[str, Any]] = {}
    for dotted, value in overrides.items():
        section, sep, key = dotted.partition(".")
        if not sep:
            raise ConfigError(f"command line: {dotted!r}: expected SECTION.KEY")
        nested.setdefault(section, {})[key] = value
    return nested


def _merge(config: Config, layers: list[tuple[str, dict[str, Any]]]) -> Config:
    sections = {f.name: f for f in dataclasses.fields(Config)}
    for source, data in layers:
        changes: dict[str, Any] = {}
        for section_name, values in data.items():
            if section_name not in sections:
                raise ConfigError(f"{source}: unknown section [{section_name}]")
            if not isinstance(values, dict):
                raise ConfigError(f"{source}: [{section_name}] must be a table")
            current = changes.get(section_name, getattr(config, section_name))
            changes[section_name] = _merge_section(source, section_name, current, values)
        config = dataclasses.replace(config, **changes)
    return config


def _merge_section(source: str, name: str, current: Any, values: dict[str, Any]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(current)}
    typed: dict[str, Any] = {}
    for key, value in values.items():
        where = f"{source}: [{name}] {key}"
        if key not in fields:
            raise ConfigError(f"{where}: unknown key")
        expected = type(getattr(current, key))
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is tuple and isinstance(value, list):
            if not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{where}: expected a list of strings")
            value = tuple(value)
        if type(value) is not expected:
            raise ConfigError(f"{where}: expected {expected.__name__}, got {type(value).__name__}")
        typed[key] = value
    try:
        return dataclasses.replace(current, **typed)
    except ValueError as exc:
        raise ConfigError(f"{source}: [{name}]: {exc}") from exc
