"""A plain upstream built with the official Python SDK, over streamable HTTP: `echo` answers
with its text, `pid` with the server's process id (to tell one run from the next).

    plain_upstream.py --http PORT
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, required=True)
    args = parser.parse_args()
    server.run(transport="streamable-http", port=args.http)
