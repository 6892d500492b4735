"""The composition root: command line, config, logging, libvirt, runtime, listeners, signals.

`main()` parses the command line and runs `run(config)`. `run` wires the concrete libvirt
adapter into the runtime as a list of components (agent/lifecycle.py), recovers existing
domains, serves RPC, and waits for SIGTERM or SIGINT (or the `shutdown_trigger` awaitable
tests pass). Shutdown is the list in reverse and leaves every VM running: STOPPING=1, stop
serving RPC, stop the VM owners, stop the sampler, close libvirt. A second signal exits at
once. Exit status: 0 after a requested stop, 1 on a crash (libvirt connection lost, a bug in
the runtime) so systemd's Restart=on-failure brings hvagent back into recovery.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import grp
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from agent import __version__, config, errors, logs, systemd
from agent.api import methods
from agent.api.app import create_app, serve
from agent.api.context import Services
from agent.api.scrape import create_scrape_app, serve_scrape
from agent.lifecycle import Lifecycle
from agent.metrics.collector import SampleAgeCollector
from agent.metrics.instruments import Instruments
from agent.metrics.sampler import Sampler
from agent.runtime.bus import StatusBus
from agent.runtime.host import HostService
from agent.runtime.records import DownRecords
from agent.runtime.recovery import recover
from agent.runtime.registry import VmRegistry
from agent.stomp.server import StompListener
from agent.virt.adapter import LibvirtHypervisor, connected
from agent.virt.port import ConnectionLost

log = logging.getLogger("agent.daemon")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="hvagent", description="hvagent host VM agent daemon")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help=f"TOML config file (default {config.DEFAULT_PATH} if it exists)",
    )
    p.add_argument("--libvirt-uri", help="override [libvirt] uri")
    p.add_argument("--listen", help="override [rpc] listen (HOST:PORT)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override any config key; VALUE is read as TOML, else as a string",
    )
    p.add_argument("--version", action="version", version=f"hvagent {__version__}")
    return p.parse_args(argv)


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise config.ConfigError(f"command line: --set {item!r}: expected SECTION.KEY=VALUE")
        try:
            out[key] = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            out[key] = raw
    if args.libvirt_uri:
        out["libvirt.uri"] = args.libvirt_uri
    if args.listen:
        out["rpc.listen"] = args.listen
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        cfg = config.load(args.config, _overrides(args))
    except config.ConfigError as exc:
        print(f"hvagent: configuration error: {exc}", file=sys.stderr)
        return 2
    try:
        _socket_place(cfg.rpc)
    except config.ConfigError as exc:
        print(f"hvagent: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.setup(cfg.logging.level)
    try:
        code = asyncio.run(run(cfg))
    except KeyboardInterrupt:
        code = 0
    exit_past_stuck_threads(code)
    return code


def exit_past_stuck_threads(
    code: int,
    grace_s: float = 2.0,
    exit_now: Callable[[int], object] = os._exit,
    threads: list[threading.Thread] | None = None,
) -> None:
    """A libvirt call stuck in a worker thread (a hung libvirtd, a domain job held by
    another client) would keep the interpreter from exiting: it joins every pool thread at
    exit. Past a short grace the process exits anyway, saying which threads it left."""
    deadline = time.monotonic() + grace_s
    if threads is None:
        threads = threading.enumerate()
    stuck = [t for t in threads if t is not threading.main_thread() and not t.daemon]
    for thread in stuck:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t for t in stuck if t.is_alive()]
    if stuck:
        log.warning(
            "exiting with %d thread(s) still in a call: %s",
            len(stuck),
            ", ".join(sorted(t.name for t in stuck)),
        )
        for handler in logging.getLogger().handlers:
            handler.flush()
        exit_now(code)


async def run(cfg: config.Config, *, shutdown_trigger: Awaitable[Any] | None = None) -> int:
    """Run hvagent until SIGTERM/SIGINT or `shutdown_trigger`; 0 after a requested stop,
    1 after a crash. The components below start in this order and stop in reverse."""
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(_loop_exception_handler)
    stop = asyncio.Event()
    _install_signals(loop, stop)
    log.info(
        "hvagent %s starting (pid %d), libvirt %s, listen %s",
        __version__,
        os.getpid(),
        cfg.libvirt.uri,
        cfg.rpc.listen,
    )
    os.makedirs(cfg.virt.console_log_dir, exist_ok=True)
    try:  # ovirt-vmconsole-host may own it already; a VM asking for a socket needs it
        os.makedirs(cfg.virt.console_socket_dir, exist_ok=True)
    except OSError as exc:
        log.warning("console_socket_dir %s: %s", cfg.virt.console_socket_dir, exc)
    notifier = systemd.Notifier()
    # Channel connections systemd kept across the restart (runtime/channels/drain.py).
    fd_store = systemd.FdStore(notifier, systemd.inherited_fds())
    try:
        async with Lifecycle() as life:
            port = await life.enter("libvirt", connected(cfg.libvirt))
            bus = StatusBus()
            # Our own registry, never prometheus_client's global REGISTRY (tests run several).
            metrics_registry = CollectorRegistry(auto_describe=False)
            instruments = Instruments(metrics_registry)
            port.call_observer = instruments.libvirt_call
            port.timeout_observer = instruments.libvirt_call_timed_out
            sampler = Sampler(
                port,
                interval_s=cfg.metrics.sample_interval_s,
                timeout_s=cfg.metrics.sample_timeout_s,
                facts=lambda: registry.vm_facts(),
            )
            registry = VmRegistry(
                port,
                bus,
                virt=cfg.virt,
                access=cfg.host_access,
                reconnect=cfg.libvirt.reconnect,
                records=DownRecords(cfg.state.dir),
                power_config=cfg.power,
                observer=instruments,
                payload=cfg.payload,
                sampled=lambda: sampler.snapshot,
                guest_agent=cfg.guest_agent,
                channels=dataclasses.replace(
                    cfg.channels, log_dir=cfg.channels.logs(cfg.state.dir)
                ),
                fd_keeper=fd_store,
            )
            metrics_registry.register(SampleAgeCollector(lambda: sampler.snapshot))
            services = Services(
                registry, HostService(port, registry), bus, port, cfg.virt, metrics=instruments
            )
            instruments.watch(
                vm_statuses=lambda: [str(o.status) for o in registry.owners()],
                libvirt_up=lambda: port.alive,
                subscribers=lambda: bus.subscriber_count,
            )
            instruments.watch_channels(
                lambda: [
                    (str(o.vm_id), c.name, c.end, c.readers, c.disk_bytes)
                    for o in registry.owners()
                    for c in o.channels.all()
                ]
            )
            await life.background("libvirt-probe", lambda: _probe(port, cfg.libvirt))
            await life.background("metrics-sampler", sampler.run)
            owners = await life.background("registry", registry.run)  # stops VM owners
            await registry.wait_started()
            app = create_app(
                services,
                metrics_registry,
                lambda: sampler.rendered,
                body_timeout_s=cfg.rpc.body_timeout_s,
            )
            unix = await life.enter("unix socket", _bound_socket(cfg.rpc))
            listen = (cfg.rpc.host, cfg.rpc.port)
            await life.enter("RPC", serve(app, listen=listen, unix=unix, limits=cfg.rpc))
            if cfg.stomp.listen:
                stomp = StompListener(cfg, services, methods.build(), instruments)
                await life.enter("STOMP", stomp)
            if cfg.metrics.listen:
                scrape = create_scrape_app(services, metrics_registry, lambda: sampler.rendered)
                host, port_ = config.split_listen(cfg.metrics.listen)
                await life.enter("scrape", serve_scrape(scrape, host, port_))
            instruments.recovery_finished(await recover(port, registry))
            # Running VMs' drains took theirs by now (their owners started with recovery).
            loop.call_later(60, fd_store.release_unclaimed)
            # The watchdog watches hvagent itself (its loop and VM owners run); a libvirt
            # outage shows in /readyz and hvagent_libvirt_up, and is reconnected.
            healthy = lambda: not owners.done()  # noqa: E731
            await life.background("systemd-watchdog", lambda: notifier.watchdog(healthy))
            life.on_stop("STOPPING=1", notifier.stopping)
            notifier.ready(f"serving on {cfg.rpc.listen}")
            triggers = [stop.wait()]
            if shutdown_trigger is not None:
                triggers.append(shutdown_trigger)
            await life.wait(*triggers)
            log.info("orderly shutdown; VMs keep running")
    except Exception as exc:
        if _libvirt_gone(exc):  # crash-only ([libvirt] reconnect = false): no traceback
            log.error("hvagent stopped: libvirt connection lost or unreachable: %s", exc)
        else:
            log.error("hvagent crashed: %s", exc, exc_info=exc)
        return 1
    log.info("bye")
    return 0


async def _probe(port: LibvirtHypervisor, cfg: config.LibvirtConfig) -> None:
    await port.probe(interval_s=cfg.probe_interval_s, timeout_s=cfg.probe_timeout_s)


def _libvirt_gone(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_libvirt_gone(e) for e in exc.exceptions)
    return isinstance(exc, ConnectionLost | errors.HypervisorUnavailable)


@contextlib.asynccontextmanager
async def _bound_socket(rpc: config.RpcConfig) -> AsyncIterator[socket.socket | None]:
    """The local RPC socket (see `_unix_socket`), removed again at exit; None when disabled."""
    if not rpc.socket:
        yield None
        return
    sock = _unix_socket(rpc.socket, rpc.socket_group)
    try:
        yield sock
    finally:
        sock.close()
        with contextlib.suppress(OSError):
            os.unlink(rpc.socket)


def _unix_socket(path: str, group: str) -> socket.socket:
    """Bind the local RPC socket, mode 0660 and `group`, before it starts listening.

    Nobody can connect before listen(), so the mode and group are in place first. A stale
    socket file from a crashed run is replaced; any other file there is an error.
    """
    gid = _socket_place(config.RpcConfig(socket=path, socket_group=group))
    with contextlib.suppress(FileNotFoundError):
        if not stat.S_ISSOCK(os.lstat(path).st_mode):
            raise config.ConfigError(f"[rpc] socket: {path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # stale, from a run that crashed
            else:
                raise config.ConfigError(f"[rpc] socket: another process serves {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    os.chmod(path, 0o660)
    if gid is not None:
        os.chown(path, -1, gid)
    return sock


def _socket_place(rpc: config.RpcConfig) -> int | None:
    """Check `[rpc] socket`'s directory and `[rpc] socket_group` before anything starts;
    returns the group's id (None: keep the daemon's). Only the default socket's own
    directory (/run/hvagent, made by systemd's RuntimeDirectory) is created when missing;
    any other directory must exist, hvagent never creates a path as root."""
    if not rpc.socket:
        return None
    gid = None
    if rpc.socket_group:
        try:
            gid = grp.getgrnam(rpc.socket_group).gr_gid
        except KeyError:
            raise config.ConfigError(
                f"[rpc] socket_group: no group named {rpc.socket_group!r}"
            ) from None
    directory = os.path.dirname(rpc.socket)
    if directory == os.path.dirname(config.RpcConfig().socket):
        try:
            os.makedirs(directory, mode=0o750, exist_ok=True)
        except OSError as exc:
            raise config.ConfigError(f"[rpc] socket: cannot create {directory}: {exc}") from None
    elif not os.path.isdir(directory):
        raise config.ConfigError(
            f"[rpc] socket: directory {directory} does not exist (hvagent creates only "
            f"{os.path.dirname(config.RpcConfig().socket)})"
        )
    return gid


def _install_signals(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(1)
        log.info("%s received: orderly shutdown", signal.Signals(signum).name)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, on_signal, sig)


def _loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    task = context.get("task") or context.get("future")
    name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
    log.error(
        "unhandled in %s: %s", name, context.get("message"), exc_info=context.get("exception")
    )
