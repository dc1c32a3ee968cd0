"""The official Python SDK client against a gateway that offers tool search: it lists the
three tools of the search, finds the tool for a task by searching, calls it through
call_tool, and (with --hidden) never finds or calls a tool outside its view.

    sdk_tool_search.py --mode legacy|2026-07-28 (--url URL | --mcps MCPS --config PROXY_YAML)
                       [--hidden NAME --hidden-query WORDS]

With --mcps, the client spawns `mcps stdio -c PROXY_YAML` and talks to it over stdio.

Exits 0 when every check holds; otherwise prints what differed and exits 1.
"""

import argparse
import asyncio
import sys

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters


async def refused(gateway, name, arguments):
    """Whether calling `name` fails, as a JSON-RPC error or an error result."""
    try:
        result = await gateway.call_tool(name, arguments)
    except Exception:  # the SDK raises the gateway's JSON-RPC error
        return True
    return bool(result.is_error)


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--url")
    parser.add_argument("--mcps")
    parser.add_argument("--config")
    parser.add_argument("--hidden")
    parser.add_argument("--hidden-query")
    args = parser.parse_args()

    failures = []
    if args.url:
        target = args.url
    else:
        target = StdioServerParameters(command=args.mcps, args=["stdio", "-c", args.config])
    async with Client(target, mode=args.mode) as gateway:
        listed = await gateway.list_tools()
        names = sorted(tool.name for tool in listed.tools)
        if names != ["call_tool", "list_tool_names", "search_tools"]:
            failures.append(f"tools/list offers {names}")

        found = await gateway.call_tool("search_tools", {"query": "echo back a message"})
        tools = (found.structured_content or {}).get("tools", [])
        if not tools or tools[0].get("name") != "everything__echo":
            failures.append(f"search for 'echo back a message' found {[t.get('name') for t in tools]}")
        elif "properties" not in tools[0].get("inputSchema", {}):
            failures.append(f"the found tool has no full definition: {tools[0]}")
        again = await gateway.call_tool("search_tools", {"query": "echo back a message"})
        if again.structured_content != found.structured_content:
            failures.append("the same search answered differently")

        echoed = await gateway.call_tool(
            "call_tool", {"name": "everything__echo", "arguments": {"message": "found by search"}}
        )
        text = echoed.content[0].text if echoed.content else ""
        if echoed.is_error or "found by search" not in text:
            failures.append(f"call_tool everything__echo gave {echoed}")

        every = await gateway.call_tool("list_tool_names", {})
        every_name = (every.structured_content or {}).get("names", [])
        if "everything__echo" not in every_name:
            failures.append(f"list_tool_names gave {every_name}")

        if await refused(gateway, "search_tools", {}):
            pass
        else:
            failures.append("search_tools without a query was not refused")
        for wrong in [{"arguments": {}}, {"name": "search_tools"}, {"name": "everything__echo", "arguments": 1}]:
            if not await refused(gateway, "call_tool", wrong):
                failures.append(f"call_tool {wrong} was not refused")

        if args.hidden:
            if args.hidden in every_name:
                failures.append(f"list_tool_names names {args.hidden}, outside the view")
            searched = await gateway.call_tool("search_tools", {"query": args.hidden_query, "limit": 50})
            seen = [t.get("name") for t in (searched.structured_content or {}).get("tools", [])]
            if args.hidden in seen:
                failures.append(f"search_tools found {args.hidden}, outside the view: {seen}")
            if not await refused(gateway, "call_tool", {"name": args.hidden, "arguments": {}}):
                failures.append(f"call_tool called {args.hidden}, outside the view")
            if not await refused(gateway, args.hidden, {}):
                failures.append(f"{args.hidden} was called directly, outside the view")

    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"ok: tool search, {args.mode}, {'http' if args.url else 'stdio'}")


asyncio.run(main())
