"""Checks prompts, resources, resource templates and completion through the gateway against a
direct connection to the same server-everything, with the official MCP Python SDK client.

    sdk_prompts_resources.py --mode legacy|2026-07-28 --url URL --node NODE --everything INDEX_JS
"""

import argparse
import asyncio
import base64
import re
import sys

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import PromptReference, ResourceTemplateReference


def without_clock(data):
    """server-everything stamps dynamic resources with the time of the read, to the second;
    two reads a moment apart may differ there and nowhere else. Blobs are compared decoded."""
    contents = [
        {**item, "blob": base64.b64decode(item["blob"]).decode("utf-8", "replace")} if "blob" in item else item
        for item in data.get("contents", [])
    ]
    text = repr({**data, "contents": contents})
    return re.sub(r"created at \d{1,2}:\d{2}:\d{2} [AP]M", "created at <time>", text)


def dump(result):
    data = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    for hop_specific in ("resultType", "ttlMs", "cacheScope", "nextCursor"):
        data.pop(hop_specific, None)
    return data


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--everything", required=True)
    args = parser.parse_args()

    failures = []
    everything = StdioServerParameters(command=args.node, args=[args.everything])
    async with Client(args.url, mode=args.mode) as gateway, Client(everything) as direct:
        # Prompts: namespaced like tools, otherwise identical.
        via = {p.name: p for p in (await gateway.list_prompts()).prompts}
        for prompt in (await direct.list_prompts()).prompts:
            exposed = f"everything__{prompt.name}"
            if exposed not in via:
                failures.append(f"prompt {exposed} missing from {sorted(via)}")
            elif via[exposed].model_copy(update={"name": prompt.name}) != prompt:
                failures.append(f"prompt {exposed} differs: {via[exposed]} vs {prompt}")
        arguments = {"city": "Paris", "state": "IDF"}
        got = dump(await gateway.get_prompt("everything__args-prompt", arguments))
        want = dump(await direct.get_prompt("args-prompt", arguments))
        if got != want:
            failures.append(f"prompts/get: {got} vs {want}")

        # Resources: URIs unchanged; reads routed by listed URI and by template.
        via_resources = [dump(r) for r in (await gateway.list_resources()).resources]
        direct_resources = [dump(r) for r in (await direct.list_resources()).resources]
        if sorted(via_resources, key=str) != sorted(direct_resources, key=str):
            failures.append(f"resources/list: {via_resources} vs {direct_resources}")
        via_templates = [dump(t) for t in (await gateway.list_resource_templates()).resource_templates]
        direct_templates = [dump(t) for t in (await direct.list_resource_templates()).resource_templates]
        if sorted(via_templates, key=str) != sorted(direct_templates, key=str):
            failures.append(f"resources/templates/list: {via_templates} vs {direct_templates}")
        uris = [direct_resources[0]["uri"], "demo://resource/dynamic/text/3", "demo://resource/dynamic/blob/7"]
        for uri in uris:
            got, want = dump(await gateway.read_resource(uri)), dump(await direct.read_resource(uri))
            if without_clock(got) != without_clock(want):
                failures.append(f"resources/read {uri}: {got} vs {want}")

        # Completion: routed to the prompt's owner with the upstream's own name.
        got = await gateway.complete(PromptReference(name="everything__completable-prompt"), {"name": "department", "value": "S"})
        if sorted(got.completion.values) != ["Sales", "Support"]:
            failures.append(f"completion/complete (prompt): {dump(got)}")
        template = "demo://resource/dynamic/text/{resourceId}"
        got = await gateway.complete(ResourceTemplateReference(uri=template), {"name": "resourceId", "value": "1"})
        want = await direct.complete(ResourceTemplateReference(uri=template), {"name": "resourceId", "value": "1"})
        if dump(got) != dump(want):
            failures.append(f"completion/complete (template): {dump(got)} vs {dump(want)}")

    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"ok: prompts, resources, completion ({args.mode})")


asyncio.run(main())
