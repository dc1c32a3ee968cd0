"""One session-era session of the official MCP Python SDK client, through a load balancer in
front of several gateways, that must live through one of them being killed.

    sdk_session_replicas.py --url URL --key KEY --calls N

Opens the session, sets its log level, calls `fx__echo` N times and prints a JSON line of what
it saw; waits for a line on stdin (the test kills a gateway meanwhile); calls N times more,
prints a second line, and ends the session (DELETE). Each line holds every session id the
gateways sent and the client used, how many requests went without one (the `initialize`s:
a client that lost its session would open another), the HTTP statuses and the calls' texts.
"""

import argparse
import asyncio
import json
import sys
import warnings

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client


class Seen:
    def __init__(self):
        self.session_ids = set()
        self.without_session = 0
        self.statuses = []

    async def request(self, request):
        session = request.headers.get("mcp-session-id")
        if session:
            self.session_ids.add(session)
        elif request.method == "POST":
            self.without_session += 1

    async def response(self, response):
        self.statuses.append(response.status_code)
        session = response.headers.get("mcp-session-id")
        if session:
            self.session_ids.add(session)

    def report(self, phase, texts):
        return json.dumps({
            "phase": phase,
            "session_ids": sorted(self.session_ids),
            "without_session": self.without_session,
            "statuses": self.statuses,
            "texts": texts,
        })


# Logging is deprecated in 2026-07-28 (SEP-2577); a session-era client still sets a level.
warnings.filterwarnings("ignore", message=".*deprecated.*")


async def calls(client, count, start):
    texts = []
    for n in range(start, start + count):
        result = await client.call_tool("fx__echo", {"n": n})
        texts.append("".join(block.text for block in result.content if block.type == "text"))
    return texts


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--calls", type=int, default=6)
    args = parser.parse_args()

    seen = Seen()
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {args.key}"},
        timeout=30,
        event_hooks={"request": [seen.request], "response": [seen.response]},
    )
    async with http:
        async with Client(streamable_http_client(args.url, http_client=http), mode="legacy") as client:
            await client.set_logging_level("debug")
            texts = await calls(client, args.calls, 0)
            print(seen.report(1, texts), flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
            seen.statuses = []
            texts = await calls(client, args.calls, args.calls)
            print(seen.report(2, texts), flush=True)


asyncio.run(main())
