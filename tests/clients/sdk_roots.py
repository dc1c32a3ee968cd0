"""An official-SDK client with roots of its own calls one tool and prints its text.

    sdk_roots.py --url URL --tool TOOL --root URI
"""

import argparse

import anyio
from mcp.client import Client
from mcp_types import ListRootsResult, Root


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--tool", required=True)
    parser.add_argument("--root", required=True)
    args = parser.parse_args()

    async def roots(context):
        return ListRootsResult(roots=[Root(uri=args.root, name="test root")])

    async with Client(args.url, mode="legacy", list_roots_callback=roots) as client:
        result = await client.call_tool(args.tool, {})
        print("\n".join(getattr(block, "text", "") for block in result.content))


if __name__ == "__main__":
    anyio.run(main)
