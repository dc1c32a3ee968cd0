"""An upstream on the official Python SDK (`mcp` 2.x) whose lists and reads carry the
SEP-2549 hints (`ttlMs`, `cacheScope`) it is told to give, through the SDK's own
`cache_hints`. Each read of `cache://NAME/counter` answers how many reads it has had, so a test
tells an answer the upstream gave from one the gateway kept. `add_tool` adds a tool and
publishes `tools` list-changed to `subscriptions/listen` streams (none, with `--no-listen`:
then a client learns of it only once the list's ttl has passed).

    cache_hints_upstream.py --http PORT --name NAME --list-ttl MS --read-ttl MS
                            --scope public|private [--no-listen]
"""

import argparse

from mcp.server.caching import CacheHint
from mcp.server.mcpserver import Context, MCPServer

LISTS = ("tools/list", "prompts/list", "resources/list", "resources/templates/list")

parser = argparse.ArgumentParser()
parser.add_argument("--http", type=int, required=True)
parser.add_argument("--name", required=True)
parser.add_argument("--list-ttl", type=int, required=True)
parser.add_argument("--read-ttl", type=int, required=True)
parser.add_argument("--scope", choices=["public", "private"], required=True)
parser.add_argument("--no-listen", action="store_true")
args = parser.parse_args()

hints = {method: CacheHint(ttl_ms=args.list_ttl, scope=args.scope) for method in LISTS}
hints["resources/read"] = CacheHint(ttl_ms=args.read_ttl, scope=args.scope)
server = MCPServer(
    "cache-hints",
    version="1.0.0",
    cache_hints=hints,
    subscriptions=False if args.no_listen else None,
)
reads = 0


@server.resource(f"cache://{args.name}/counter")
def counter() -> str:
    """How many times it has been read."""
    global reads
    reads += 1
    return f"read {reads}"


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Adds a tool called `name`, and says so to listeners."""
    server.add_tool(lambda: name, name=name, description="Added by add_tool.")
    await ctx.notify_tools_changed()
    return f"added {name}"


if __name__ == "__main__":
    server.run(transport="streamable-http", port=args.http)
