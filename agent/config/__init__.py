"""hvagent's configuration: frozen dataclasses and a strict TOML loader.

`load(path)` reads one TOML file (plus `<file>.d/*.toml` drop-ins in lexical order) over the
built-in defaults and returns a `Config`. Unknown sections or keys and values of the wrong type
stop startup with a `ConfigError` naming the file and the key: a typo must never silently fall
back to a default. No module reads configuration at import time; the daemon passes `Config`
objects down to constructors. Every key is documented, with its default, in conf/hvagent.toml.
"""

from agent.config.listeners import (
    MetricsConfig,
    RpcConfig,
    StompConfig,
    TlsConfig,
    is_loopback,
    split_listen,
)
from agent.config.loader import DEFAULT_PATH, Config, ConfigError, check_secure, load
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

__all__ = [
    "DEFAULT_PATH",
    "ChannelsConfig",
    "Config",
    "ConfigError",
    "GuestAgentConfig",
    "HostAccessConfig",
    "LibvirtConfig",
    "LoggingConfig",
    "MetricsConfig",
    "PayloadConfig",
    "PowerConfig",
    "RpcConfig",
    "StateConfig",
    "StompConfig",
    "TlsConfig",
    "VirtConfig",
    "check_secure",
    "is_loopback",
    "load",
    "split_listen",
]
