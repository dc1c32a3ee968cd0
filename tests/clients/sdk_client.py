"""Drives the gateway with the official MCP Python SDK client and checks it against direct
connections to the same real upstream servers.

    sdk_client.py --mode legacy|2026-07-28 (--url URL | --mcps BIN --config FILE)
                  --node NODE --everything INDEX_JS --python PYTHON

Exits 0 when every check holds; otherwise prints what differed and exits 1.
"""

import argparse
import asyncio
import sys

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

EXPECTED_TOOLS = {
    "everything__echo",
    "everything__get-sum",
    "everything__get-tiny-image",
    "everything__get-structured-content",
    "time__get_current_time",
    "time__convert_time",
}

# (exposed name, upstream name, arguments): results must be identical through the gateway.
SAME_RESULT_CALLS = [
    ("everything__echo", "echo", {"message": "hello through the gateway"}),
    ("everything__get-sum", "get-sum", {"a": 19, "b": 23}),
    ("everything__get-tiny-image", "get-tiny-image", {}),
    ("everything__get-structured-content", "get-structured-content", {"location": "New York"}),
    ("time__convert_time", "convert_time", {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}),
]


def dump(result):
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    # The client's revision decides whether `resultType` is on the wire; the payload must not differ.
    data.pop("resultType", None)
    # So does the hop: a 2026-07-28 server names itself in a result's `_meta`, and a server
    # reached in the session era does not.
    meta = data.get("_meta", {})
    meta.pop("io.modelcontextprotocol/serverInfo", None)
    if not meta:
        data.pop("_meta", None)
    return data


async def all_tool_names(client):
    names, cursor = [], None
    while True:
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        names += [tool.name for tool in page.tools]
        cursor = page.next_cursor
        if not cursor:
            return names


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--url")
    parser.add_argument("--mcps")
    parser.add_argument("--config")
    parser.add_argument("--node", required=True)
    parser.add_argument("--everything", required=True)
    parser.add_argument("--python", required=True)
    args = parser.parse_args()

    if args.url:
        gateway_target = args.url
    else:
        gateway_target = StdioServerParameters(command=args.mcps, args=["stdio", "-c", args.config])
    everything = StdioServerParameters(command=args.node, args=[args.everything])
    time_server = StdioServerParameters(command=args.python, args=["-m", "mcp_server_time", "--local-timezone", "UTC"])

    failures = []
    async with Client(gateway_target, mode=args.mode) as gateway:
        names = await all_tool_names(gateway)
        missing = EXPECTED_TOOLS - set(names)
        if missing:
            failures.append(f"tools/list lacks {sorted(missing)}; got {names}")
        if any("__" not in name for name in names):
            failures.append(f"un-namespaced tools in {names}")

        async with Client(everything) as direct_everything, Client(time_server) as direct_time:
            for exposed, original, arguments in SAME_RESULT_CALLS:
                direct = direct_time if exposed.startswith("time__") else direct_everything
                via_gateway = dump(await gateway.call_tool(exposed, arguments))
                straight = dump(await direct.call_tool(original, arguments))
                if via_gateway != straight:
                    failures.append(f"{exposed}: gateway gave {via_gateway}, upstream gave {straight}")

        image = await gateway.call_tool("everything__get-tiny-image", {})
        if not any(block.type == "image" and block.data for block in image.content):
            failures.append(f"get-tiny-image lost its image content: {dump(image)}")
        structured = await gateway.call_tool("everything__get-structured-content", {"location": "Chicago"})
        if not structured.structured_content:
            failures.append(f"get-structured-content lost structuredContent: {dump(structured)}")

        now = await gateway.call_tool("time__get_current_time", {"timezone": "Europe/Paris"})
        if now.is_error or not now.content or "Europe/Paris" not in now.content[0].text:
            failures.append(f"get_current_time: {dump(now)}")

    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"ok: {args.mode} {'http' if args.url else 'stdio'}, {len(names)} tools")


asyncio.run(main())
