"""Two official-SDK clients at once, each calling tools that ask the client for input
(elicitation, sampling, roots) through the gateway: every question must reach the client
whose call asked it, so each client's answers come back in its own results only.

    sdk_client_requests.py --mode legacy|2026-07-28 --url URL --prefix PREFIX
                           [--clients N] [--tools TOOL ...] [--padding BYTES] [--progress]

--padding makes every sampling answer that much longer (answers larger than a notification
of the gateways' registry can carry). --progress asks for progress on every call (the SDK
then sends a progress token), which a gateway may serve on another way than a plain call.
"""

import argparse
import sys

import anyio
from mcp.client import Client
from mcp_types import (
    CreateMessageResult,
    ElicitResult,
    ListRootsResult,
    Root,
    TextContent,
)

ROUNDS = 3


def callbacks(label, padding):
    async def elicit(context, params):
        return ElicitResult(action="accept", content={"name": label})

    async def sample(context, params):
        return CreateMessageResult(
            role="assistant",
            content=TextContent(type="text", text=f"hi from {label}" + "." * padding),
            model="test-model",
        )

    async def roots(context):
        return ListRootsResult(roots=[Root(uri=f"file:///{label}")])

    return {
        "elicitation_callback": elicit,
        "sampling_callback": sample,
        "list_roots_callback": roots,
    }


EXPECTED = {
    "greet": lambda label, padding: f"Hello, {label}!",
    "summarize": lambda label, padding: f"model said: hi from {label}" + "." * padding,
    "roots": lambda label, padding: f"file:///{label}",
}


async def run_client(url, mode, prefix, tools, label, padding, progress, failures):
    async def on_progress(progress, total, message):
        pass

    async with Client(url, mode=mode, **callbacks(label, padding)) as client:
        for _ in range(ROUNDS):
            for tool in tools:
                result = await client.call_tool(
                    f"{prefix}{tool}", {}, progress_callback=on_progress if progress else None
                )
                text = result.content[0].text if result.content else repr(result)
                if result.is_error or text != EXPECTED[tool](label, padding):
                    failures.append(f"{label} {tool}: got {text[:200]!r}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--prefix", default="")
    parser.add_argument("--tools", nargs="+", default=list(EXPECTED))
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--padding", type=int, default=0)
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args()
    failures = []
    async with anyio.create_task_group() as group:
        for label in ("alice", "bob", "carol", "dave")[: args.clients]:
            group.start_soon(
                run_client,
                args.url,
                args.mode,
                args.prefix,
                args.tools,
                label,
                args.padding,
                args.progress,
                failures,
            )
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"ok: client requests ({args.mode})")


if __name__ == "__main__":
    anyio.run(main)
