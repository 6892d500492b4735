"""Loading the configuration: the TOML file, its drop-ins and command-line overrides, merged
strictly over the defaults into one `Config`."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.config.listeners import (
    MetricsConfig,
    RpcConfig,
    StompConfig,
    TlsConfig,
    is_loopback,
    split_listen,
)
from agent.config.sections import (
    ChannelsConfig,
    GuestAgentConfig,
    HostAccessConfig,
    LibvirtConfig,
    LoggingConfig,
    PayloadConfig,
    PowerConfig,
    StateConfig,
    VirtConfig,
)

DEFAULT_PATH = Path("/etc/hvagent/hvagent.toml")


class ConfigError(Exception):
    """A configuration file or override is invalid; the message names file and key."""


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
    guest_agent: GuestAgentConfig = field(default_factory=GuestAgentConfig)
    channels: ChannelsConfig = field(default_factory=ChannelsConfig)

    @classmethod
    def defaults(cls) -> Config:
        return cls()


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
