"""The RPC shell: the only package that imports aiohttp and jsonrpcserver."""
