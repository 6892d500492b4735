"""STOMP 1.2 transport for the engine: codec (pure) and asyncio server."""
