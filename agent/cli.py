"""hvagent-client: call hvagent's verbs from a shell, in the style of vdsm-client.

    hvagent-client [--url URL | --socket PATH] [--timeout S] Namespace verb [name=value ...]
    hvagent-client [...] Namespace verb -f params.json
    hvagent-client [...] events
    hvagent-client [...] VM follow-channel VMID NAME [--offset N]
    hvagent-client [...] VM create --ovf FILE | --vm-conf FILE | --ova FILE [--vm-id ID]
    hvagent-client [...] VM create vmID=ID -f FILE --cloud-init USER_DATA [--meta-data FILE]
    hvagent-client [...] he-start --ovf FILE | --vm-conf FILE | --ova FILE [--vm-id ID]
    hvagent-client --stomp [--address HOST:PORT] [--ca CA --cert CERT --key KEY] Namespace verb ...

Values are read as JSON where they parse (`memSize=256`, `vmParams={"vmId": ...}`), else as
strings (`vmID=6f5c...`). The result is printed as JSON; an error prints its code, message and
data on stderr and exits 1 (2 for usage errors, 3 when hvagent cannot be reached).
`he-start` starts the hosted-engine VM like `hosted-engine --vm-start` (agent/cli_he.py).
`events` prints every notification from /events, one JSON object per line, until Ctrl-C.
`VM follow-channel` writes a channel's raw bytes from offset N (default 0) to stdout, live,
until the VM is down and every byte was written (exit 0); HTTP or the Unix socket only
(it is a WebSocket stream, which STOMP cannot carry).
The default transport is the daemon's local Unix socket ([rpc] socket); `--url` uses HTTP;
`--stomp` takes the engine's path: STOMP on [stomp] listen (default 127.0.0.1:54321), over
mutual TLS when `--cert` is given (`--ca` verifies hvagent's certificate; no host name check,
as VDSM's clients).
`--help` lists the verbs the running daemon serves (GET /verbs); when it cannot be reached,
the verb table of the installed hvagent package is shown instead, marked as such.

This module never imports libvirt: it speaks to the daemon through agent/api/client.py
(HTTP) or agent/stomp/client.py (STOMP).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from agent import __version__, cli_he
from agent.api.client import DEFAULT_SOCKET, Client, Unreachable
from agent.stomp.client import StompError

DEFAULT_STOMP = "127.0.0.1:54321"
EXIT_ERROR, EXIT_USAGE, EXIT_UNREACHABLE = 1, 2, 3


class Usage(Exception):
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hvagent-client",
        description="Call hvagent JSON-RPC verbs: hvagent-client Namespace verb name=value ...",
        add_help=False,
    )
    where = p.add_mutually_exclusive_group()
    where.add_argument("--url", help="HTTP base URL, e.g. http://127.0.0.1:54322")
    where.add_argument("--socket", help=f"Unix socket path (default {DEFAULT_SOCKET})")
    where.add_argument("--stomp", action="store_true", help="use STOMP, as the engine does")
    p.add_argument("--address", default=DEFAULT_STOMP, help=f"STOMP HOST:PORT ({DEFAULT_STOMP})")
    p.add_argument("--cert", help="client certificate (PEM): STOMP over mutual TLS")
    p.add_argument("--key", help="client key (PEM; default: in --cert)")
    p.add_argument("--ca", help="CA certificate that signed hvagent's certificate (PEM)")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds (default 60)")
    p.add_argument("-f", "--file", type=Path, help="read the params as a JSON object from FILE")
    p.add_argument("-h", "--help", action="store_true", help="show this help and the verbs")
    p.add_argument("--version", action="version", version=f"hvagent-client {__version__}")
    cli_he.add_arguments(p)
    p.add_argument(
        "--cloud-init",
        type=Path,
        metavar="USER_DATA_FILE",
        help="VM create: add a NoCloud cidata cdrom with this user-data (vmParams.cloudInit)",
    )
    p.add_argument(
        "--meta-data",
        type=Path,
        metavar="FILE",
        help="... and this meta-data (default: 'instance-id: <vmID>')",
    )
    p.add_argument(
        "--offset", type=int, default=0, help="VM follow-channel: start at this byte (default 0)"
    )
    p.add_argument("namespace", nargs="?", help="Host, VM, ..., 'events' or 'he-start'")
    p.add_argument("verb", nargs="?")
    p.add_argument("params", nargs="*", metavar="name=value")
    return p


def parse_value(raw: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def build_params(pairs: list[str], file: Path | None) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if file is not None:
        data = json.loads(sys.stdin.read() if str(file) == "-" else file.read_text())
        if not isinstance(data, dict):
            raise Usage(f"{file}: expected a JSON object of params")
        params.update(data)
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name:
            raise Usage(f"expected name=value, got {pair!r}")
        params[name] = parse_value(raw)
    return params


def add_cloud_init(params: dict[str, Any], args: argparse.Namespace) -> None:
    """`VM create --cloud-init USER_DATA [--meta-data FILE]`: the files' text as
    vmParams.cloudInit (agent/intake/payload.py builds the ISO on the daemon's host)."""
    if (args.namespace, args.verb) != ("VM", "create") or args.cloud_init is None:
        raise Usage("--cloud-init USER_DATA_FILE [--meta-data FILE] goes with 'VM create'")
    vm_params = params.setdefault("vmParams", {})
    if not isinstance(vm_params, dict):
        raise Usage("vmParams must be a JSON object to add --cloud-init")
    if args.meta_data is not None:
        meta = args.meta_data.read_text()
    else:
        meta = f"instance-id: {params.get('vmID') or vm_params.get('vmId', '')}\n"
    vm_params["cloudInit"] = {"userData": args.cloud_init.read_text(), "metaData": meta}


def _local_verbs() -> dict[str, list[str]]:
    from agent.api.app import verb_table  # the installed package's table (no libvirt)

    return verb_table()


def _help_text(parser: argparse.ArgumentParser, verbs: dict[str, list[str]], source: str) -> str:
    lines = [parser.format_help(), f"verbs ({source}):"]
    for name, params in verbs.items():
        ns, _, verb = name.partition(".")
        lines.append(f"  {ns} {verb} " + " ".join(f"{p}=..." for p in params))
    lines.append("  events   (follow VM status notifications)")
    lines.append("  VM follow-channel VMID NAME [--offset N]   (a channel's bytes to stdout)")
    return "\n".join(lines)


async def _run_stomp(args: argparse.Namespace) -> dict[str, Any] | None:
    from agent.config import split_listen
    from agent.stomp.client import StompClient, client_context

    try:
        host, port = split_listen(args.address)
    except ValueError as exc:
        raise Usage(f"--address: {exc}") from None
    ctx = client_context(args.ca, args.cert, args.key) if args.cert or args.ca else None
    async with asyncio.timeout(None if args.namespace == "events" else args.timeout):
        client = await StompClient.connect(host, port, ctx)
        try:
            if args.namespace == "events":
                async for event in client.events():
                    print(event, flush=True)
                return None
            if not args.verb:
                raise Usage("missing verb: hvagent-client Namespace verb name=value ...")
            params = build_params(args.params, args.file)
            return await client.call(f"{args.namespace}.{args.verb}", params)
        finally:
            await client.close()


async def _run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.stomp and (args.namespace == "he-start" or cli_he.given(args)):
        raise Usage("--stomp runs verbs and events only; he-start/--ovf/--vm-conf/--ova use HTTP")
    following = (args.namespace, args.verb) == ("VM", "follow-channel")
    if args.stomp and following:
        raise Usage("follow-channel is a WebSocket stream: use HTTP (--url) or the Unix socket")
    if args.stomp and args.namespace and not args.help:
        reply = await _run_stomp(args)
        return 0 if reply is None else _print_reply(reply)
    client = Client(args.url, args.socket, args.timeout)
    try:
        if args.help or not args.namespace:
            try:
                verbs, source = await client.verbs(), "from the running hvagent"
            except (Unreachable, OSError, TimeoutError):
                verbs, source = _local_verbs(), "hvagent not reachable: installed package's"
            print(_help_text(parser, verbs, source))
            return 0 if args.help else EXIT_USAGE
        if args.namespace == "events":
            await client.events()
            return 0
        if following:
            if len(args.params) != 2:
                raise Usage("usage: hvagent-client VM follow-channel VMID NAME [--offset N]")
            refused = await client.follow_channel(*args.params, args.offset, sys.stdout.buffer)
            return 0 if refused is None else _print_reply(refused)
        if args.namespace == "he-start" or cli_he.given(args):
            reply = await _hosted_engine(client, args)
        else:
            if not args.verb:
                raise Usage("missing verb: hvagent-client Namespace verb name=value ...")
            params = build_params(args.params, args.file)
            if args.cloud_init is not None or args.meta_data is not None:
                add_cloud_init(params, args)
            reply = await client.call(f"{args.namespace}.{args.verb}", params)
    finally:
        await client.close()
    return _print_reply(reply)


def _print_reply(reply: dict[str, Any]) -> int:
    if "error" in reply:
        err = reply["error"]
        print(f"error {err.get('code')}: {err.get('message')}", file=sys.stderr)
        if err.get("data"):
            print(json.dumps(err["data"], indent=2, sort_keys=True), file=sys.stderr)
        return EXIT_ERROR
    print(json.dumps(reply.get("result"), indent=2, sort_keys=True))
    return 0


async def _hosted_engine(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    if not cli_he.given(args):
        raise Usage("he-start needs --ovf FILE, --vm-conf FILE or --ova FILE")
    if args.namespace != "he-start" and (args.namespace, args.verb) != ("VM", "create"):
        raise Usage("--ovf/--vm-conf/--ova go with 'VM create' or 'he-start'")
    if args.cloud_init is not None or args.meta_data is not None:
        raise Usage("--cloud-init goes with plain vmParams, not --ovf/--vm-conf/--ova")
    try:
        vm_id, vm_params = cli_he.request(args)
        if args.namespace == "he-start":
            return await cli_he.he_start(client.call, vm_id, vm_params)
    except cli_he.HeUsage as exc:
        raise Usage(str(exc)) from None
    return await client.call("VM.create", {"vmID": vm_id, "vmParams": vm_params})


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return asyncio.run(_run(args, parser))
    except Usage as exc:
        print(f"hvagent-client: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (Unreachable, OSError, TimeoutError, StompError) as exc:
        where = args.address if args.stomp else args.url or args.socket or DEFAULT_SOCKET
        print(f"hvagent-client: cannot reach hvagent at {where}: {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
