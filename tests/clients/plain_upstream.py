"""A plain upstream built with the official Python SDK, over streamable HTTP: `echo` answers
with its text, `pid` with the server's process id (to tell one run from the next); the prompt
`greeting` greets a name, and the resource `plain://pid` is the process id.

    plain_upstream.py --http PORT [--keep-alive SECS]

`--keep-alive` runs it under uvicorn closing connections idle that long, as gunicorn's uvicorn
workers do (gunicorn's `keepalive`, 2 s unless set); uvicorn says nothing of it in a header.
"""

import argparse
import os

from mcp.server.mcpserver import MCPServer

server = MCPServer("plain")


@server.tool()
def echo(text: str) -> str:
    """Answers with `text`."""
    return text


@server.tool()
def pid() -> str:
    """Answers with this server's process id."""
    return str(os.getpid())


@server.prompt()
def greeting(name: str) -> str:
    """Greets `name`."""
    return f"Hello, {name}!"


@server.resource("plain://pid", mime_type="text/plain")
def pid_resource() -> str:
    """This server's process id."""
    return str(os.getpid())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, required=True)
    parser.add_argument("--keep-alive", type=int)
    args = parser.parse_args()
    if args.keep_alive is None:
        server.run(transport="streamable-http", port=args.http)
    else:
        import uvicorn

        uvicorn.run(
            server.streamable_http_app(),
            host="127.0.0.1",
            port=args.http,
            timeout_keep_alive=args.keep_alive,
            log_level="warning",
        )
