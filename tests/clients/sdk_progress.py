"""Two official-SDK clients call a long-running tool on one shared upstream at the same time:
each must receive exactly its own progress notifications. Then one of them cancels a call:
that call ends, the other client's concurrent call completes.

    sdk_progress.py --mode legacy|2026-07-28 --url URL
"""

import argparse
import asyncio
import sys

import anyio
from mcp.client import Client

STEPS = 4


async def run_with_progress(url, mode, label, failures):
    seen = []

    async def on_progress(progress, total, message):
        seen.append((progress, total))

    async with Client(url, mode=mode) as client:
        result = await client.call_tool(
            "everything__trigger-long-running-operation",
            {"duration": 1, "steps": STEPS},
            progress_callback=on_progress,
        )
    if result.is_error:
        failures.append(f"{label}: call failed: {result}")
    if len(seen) != STEPS:
        failures.append(f"{label}: expected {STEPS} progress notifications, got {seen}")
    elif [p for p, _ in seen] != sorted(p for p, _ in seen):
        failures.append(f"{label}: progress went backwards: {seen}")


async def cancel_one_of_two(url, mode, failures):
    async with Client(url, mode=mode) as keeper, Client(url, mode=mode) as quitter:
        kept = {}

        async def keep():
            kept["result"] = await keeper.call_tool(
                "everything__trigger-long-running-operation", {"duration": 1.5, "steps": 3}
            )

        async def quit_early():
            with anyio.move_on_after(0.4):
                await quitter.call_tool(
                    "everything__trigger-long-running-operation", {"duration": 5, "steps": 5}
                )
                failures.append("the cancelled call completed")

        async with anyio.create_task_group() as group:
            group.start_soon(keep)
            group.start_soon(quit_early)
        result = kept.get("result")
        if result is None or result.is_error:
            failures.append(f"the other client's call did not complete: {result}")
        # The quitter's session still works after cancelling.
        echo = await quitter.call_tool("everything__echo", {"message": "after cancel"})
        if echo.content[0].text != "Echo: after cancel":
            failures.append(f"session broken after cancel: {echo}")


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", required=True)
    parser.add_argument("--url", required=True)
    args = parser.parse_args()
    failures = []
    async with anyio.create_task_group() as group:
        group.start_soon(run_with_progress, args.url, args.mode, "client A", failures)
        group.start_soon(run_with_progress, args.url, args.mode, "client B", failures)
    await cancel_one_of_two(args.url, args.mode, failures)
    if failures:
        print("\n".join(failures))
        sys.exit(1)
    print(f"ok: progress and cancellation ({args.mode})")


asyncio.run(main())
