"""The baseline for bench/rpc_ping.py: a bare aiohttp handler answering Host.ping2's JSON."""

import sys

from aiohttp import web

BODY = '{"jsonrpc": "2.0", "result": true, "id": 1}'


async def handler(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text=BODY, content_type="application/json")


if __name__ == "__main__":
    app = web.Application()
    app.router.add_post("/jsonrpc", handler)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
