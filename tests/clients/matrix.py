"""Two official-SDK clients of one era, at the same time, on one gateway and through it on one
shared upstream (a conformance fixture under the prefix `fx`): each feature's answers must
reach the client that caused them and no other.

    matrix.py (--url URL | --stdio COMMAND ARG...) --mode legacy|2026-07-28 [--prefix fx__]
              [--only FEATURE ...]

Over stdio each client starts its own COMMAND (`mcps stdio`, or a fixture directly).

Prints `ok FEATURE` or `FAILED FEATURE: why` per feature. Run directly against the fixture
(`--prefix ""`) it shows what the fixture's SDK does for a client of that era; the gateway
must carry every feature that passes there.
"""

import argparse
import os
import sys
import warnings

import anyio
import mcp_types as types
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPDeprecationWarning

PREFIX = ""
# How long both clients are left alone before each list change (--quiet).
QUIET = 0.0
# resources/subscribe is deprecated by 2026-07-28; session-era clients still use it.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)
WATCHED = "test://watched-resource"
# Long enough that both clients' requests are in flight at once.
OVERLAP = 0.3
# How long a notification that must come may take: the upstream re-lists first, and on a
# loaded 2-core machine an SDK's single-threaded server can take seconds. It is awaited, so
# an arrival ends the wait.
ARRIVAL = 15


def text_of(result) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


class Probe:
    """One client, and everything that reached it."""

    def __init__(self, url: str, mode: str, who: str):
        self.who = who
        self.asked: list[str] = []
        self.logs: list[str] = []
        self.notifications: list[str] = []
        self.url = url
        self.mode = mode

    async def sampling(self, context, params):
        self.asked.append(params.messages[0].content.text)
        await anyio.sleep(OVERLAP)
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=f"answer-{self.who}"), model="probe"
        )

    async def elicitation(self, context, params):
        await anyio.sleep(OVERLAP)
        if getattr(params, "mode", None) == "url":
            self.asked.append(params.url)
            return types.ElicitResult(action="accept")
        self.asked.append(params.message)
        return types.ElicitResult(action="accept", content={"response": self.who, "name": self.who})

    async def roots(self, context):
        self.asked.append("roots")
        await anyio.sleep(OVERLAP)
        return types.ListRootsResult(roots=[types.Root(uri=f"file:///{self.who}", name=self.who)])

    async def logging(self, params):
        self.logs.append(str(params.data))

    async def message(self, message):
        if isinstance(message, types.ServerNotification) or hasattr(message, "method"):
            method = getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)
            if method:
                self.notifications.append(method)

    def client(self) -> Client:
        return Client(
            self.url,
            mode=self.mode,
            sampling_callback=self.sampling,
            elicitation_callback=self.elicitation,
            list_roots_callback=self.roots,
            logging_callback=self.logging,
            log_level="info",
            message_handler=self.message,
            client_info=types.Implementation(name=f"matrix-{self.who}", version="1"),
        )


async def sampling(probe: Probe, client: Client, failures: list[str]):
    result = await client.call_tool(PREFIX + "test_sampling", {"prompt": probe.who})
    if text_of(result) != f"LLM response: answer-{probe.who}":
        failures.append(f"{probe.who}: sampling answered {text_of(result)!r}")
    if probe.asked != [probe.who]:
        failures.append(f"{probe.who}: asked to sample {probe.asked}, expected only its own prompt")


async def elicitation(probe: Probe, client: Client, failures: list[str]):
    result = await client.call_tool(PREFIX + "test_elicitation", {"message": probe.who})
    text = text_of(result)
    if "action=accept" not in text or probe.who not in text:
        failures.append(f"{probe.who}: elicitation answered {text!r}")
    if probe.asked != [probe.who]:
        failures.append(f"{probe.who}: asked {probe.asked}, expected only its own question")


async def url_elicitation(probe: Probe, client: Client, failures: list[str]):
    result = await client.call_tool(PREFIX + "test_url_elicitation", {"message": probe.who})
    if "action=accept" not in text_of(result):
        failures.append(f"{probe.who}: URL elicitation answered {text_of(result)!r}")
    if probe.asked != [f"https://example.com/{probe.who}"]:
        failures.append(f"{probe.who}: asked to visit {probe.asked}, expected only its own URL")


async def cancellation(probe: Probe, client: Client, failures: list[str]):
    """alice cancels a long call; bob's, running at the same time, completes."""
    if probe.who == "alice":
        started = anyio.current_time()
        with anyio.move_on_after(0.5):
            await client.call_tool(PREFIX + "test_slow_tool", {"seconds": 10})
            failures.append("alice: the call she cancelled completed")
        # The client is still usable, and the upstream was not held up.
        result = await client.call_tool(PREFIX + "test_simple_text", {})
        if result.is_error or anyio.current_time() - started > 5:
            failures.append(f"alice: after cancelling, a call took too long or failed: {text_of(result)!r}")
    else:
        result = await client.call_tool(PREFIX + "test_slow_tool", {"seconds": 1})
        if text_of(result) not in ("slept 1", "slept 1.0"):
            failures.append(f"bob: his concurrent call answered {text_of(result)!r}")


async def roots(probe: Probe, client: Client, failures: list[str]):
    result = await client.call_tool(PREFIX + "test_input_required_result_list_roots", {})
    text = text_of(result)
    if f"file:///{probe.who}" not in text:
        failures.append(f"{probe.who}: roots answered {text!r}")
    if probe.asked != ["roots"]:
        failures.append(f"{probe.who}: asked {probe.asked}, expected one roots/list")


async def progress(probe: Probe, client: Client, failures: list[str]):
    seen = []

    async def on_progress(value, total, message):
        seen.append(value)

    result = await client.call_tool(PREFIX + "test_tool_with_progress", {}, progress_callback=on_progress)
    if result.is_error:
        failures.append(f"{probe.who}: the progress tool failed: {text_of(result)}")
    if seen != [0, 50, 100]:
        failures.append(f"{probe.who}: progress {seen}, expected [0, 50, 100]")


async def logging(probe: Probe, client: Client, failures: list[str]):
    result = await client.call_tool(PREFIX + "test_tool_with_logging", {})
    if result.is_error:
        failures.append(f"{probe.who}: the logging tool failed: {text_of(result)}")
    expected = ["Tool execution started", "Tool processing data", "Tool execution completed"]
    if probe.logs != expected:
        failures.append(f"{probe.who}: log messages {probe.logs}, expected {expected}")


FEATURES = {
    "sampling": sampling,
    "elicitation": elicitation,
    "url_elicitation": url_elicitation,
    "cancellation": cancellation,
    "roots": roots,
    "progress": progress,
    "logging": logging,
}


async def both_at_once(url: str, mode: str, feature: str) -> list[str]:
    failures: list[str] = []
    probes = [Probe(url, mode, "alice"), Probe(url, mode, "bob")]
    async with probes[0].client() as first, probes[1].client() as second:
        async with anyio.create_task_group() as group:
            for probe, client in zip(probes, (first, second)):
                group.start_soon(FEATURES[feature], probe, client, failures)
    return failures


# What each trigger changes: the notification, the listen filter, and how to read the list.
LISTS = {
    "tools": ("notifications/tools/list_changed", "tools_list_changed"),
    "prompts": ("notifications/prompts/list_changed", "prompts_list_changed"),
    "resources": ("notifications/resources/list_changed", "resources_list_changed"),
}


# A trigger that changes another list than the key's.
OTHER_TRIGGER = {
    "tools": "test_trigger_prompt_change",
    "prompts": "test_trigger_resource_change",
    "resources": "test_trigger_tool_change",
}


async def names_in(client: Client, kind: str) -> list[str]:
    if kind == "tools":
        return [tool.name for tool in (await client.list_tools()).tools]
    if kind == "prompts":
        return [prompt.name for prompt in (await client.list_prompts()).prompts]
    return [str(resource.uri) for resource in (await client.list_resources()).resources]


async def list_changed(url: str, mode: str) -> list[str]:
    """One client changes the tool, prompt and resource lists in turn; both hear of each.
    With --quiet, both are left alone that long before each change (a gateway may put their
    sessions to sleep meanwhile: the one that does not call must still hear it)."""
    failures: list[str] = []
    probes = [Probe(url, mode, "alice"), Probe(url, mode, "bob")]
    async with probes[0].client() as first, probes[1].client() as second:
        for kind, (method, filter_name) in LISTS.items():
            trigger = PREFIX + ("test_trigger_tool_change" if kind == "tools" else f"test_trigger_{kind[:-1]}_change")
            if mode == "legacy":
                await anyio.sleep(QUIET)
                await first.call_tool(trigger, {})
                with anyio.move_on_after(ARRIVAL):
                    while not all(method in p.notifications for p in probes):
                        await anyio.sleep(0.05)
                for probe in probes:
                    if method not in probe.notifications:
                        failures.append(f"{probe.who}: no {method}, got {probe.notifications}")
            else:
                heard = {}
                listen = {filter_name: True}
                async with first.listen(**listen) as one, second.listen(**listen) as two:

                    async def hear(who, subscription):
                        with anyio.move_on_after(ARRIVAL):
                            async for event in subscription:
                                heard.setdefault(who, []).append(type(event).__name__)
                                if kind.capitalize() in type(event).__name__:
                                    return

                    async with anyio.create_task_group() as group:
                        group.start_soon(hear, "alice", one)
                        group.start_soon(hear, "bob", two)
                        # A change of another list first: it must neither reach these
                        # streams nor end them.
                        await first.call_tool(PREFIX + OTHER_TRIGGER[kind], {})
                        await first.call_tool(trigger, {})
                for who in ("alice", "bob"):
                    events = heard.get(who, [])
                    if not any(kind.capitalize() in event for event in events):
                        failures.append(f"{who}: no {kind} list change on its subscriptions/listen stream: {events}")
                    if any(kind.capitalize() not in event for event in events):
                        failures.append(f"{who}: a listener for {kind} heard {events}")
            listed = await names_in(second, kind)
            if not any("added" in name for name in listed):
                failures.append(f"the added {kind[:-1]} is not listed: {listed}")
    return failures


async def resource_updates(url: str, mode: str) -> list[str]:
    """One client subscribes to the watched resource, the other does not: only the first hears
    of its update."""
    failures: list[str] = []
    probes = [Probe(url, mode, "alice"), Probe(url, mode, "bob")]
    async with probes[0].client() as watcher, probes[1].client() as other:
        updated = "notifications/resources/updated"
        if mode == "legacy":
            await watcher.subscribe_resource(WATCHED)
            await other.call_tool(PREFIX + "test_trigger_resource_update", {})
            with anyio.move_on_after(ARRIVAL):
                while updated not in probes[0].notifications:
                    await anyio.sleep(0.05)
            await anyio.sleep(0.3)
            if updated not in probes[0].notifications:
                failures.append(f"the subscriber heard no update: {probes[0].notifications}")
            if updated in probes[1].notifications:
                failures.append("the client that did not subscribe heard the update")
            await watcher.unsubscribe_resource(WATCHED)
            probes[0].notifications.clear()
            await other.call_tool(PREFIX + "test_trigger_resource_update", {})
            await anyio.sleep(0.5)
            if updated in probes[0].notifications:
                failures.append("an update arrived after unsubscribing")
        else:
            heard = []
            async with watcher.listen(resource_subscriptions=[WATCHED]) as subscription, other.listen(
                prompts_list_changed=True
            ) as unrelated:
                async def hear(subscription, into, first_only):
                    async for event in subscription:
                        into.append(type(event).__name__)
                        if first_only:
                            return

                others = []
                async with anyio.create_task_group() as group:
                    group.start_soon(hear, unrelated, others, False)
                    with anyio.move_on_after(ARRIVAL):
                        async with anyio.create_task_group() as watching:
                            watching.start_soon(hear, subscription, heard, True)
                            await other.call_tool(PREFIX + "test_trigger_resource_update", {})
                    # Time for a stray update to reach the other listener too.
                    await anyio.sleep(0.5)
                    group.cancel_scope.cancel()
            if not heard:
                failures.append("the listener for the watched resource heard no update")
            if others:
                failures.append(f"a listener for prompt changes only heard {others}")
    return failures


async def main():
    parser = argparse.ArgumentParser()
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url")
    target.add_argument("--stdio", nargs=argparse.REMAINDER)
    parser.add_argument("--mode", required=True, choices=["legacy", "2026-07-28"])
    parser.add_argument("--prefix", default="fx__")
    parser.add_argument("--only", nargs="*")
    parser.add_argument("--quiet", type=float, default=0.0)
    args = parser.parse_args()
    global PREFIX, QUIET
    PREFIX = args.prefix
    QUIET = args.quiet
    # The SDK passes a child only a safe few variables; NODE_PATH and the like must reach it.
    server = args.url or StdioServerParameters(command=args.stdio[0], args=args.stdio[1:], env=dict(os.environ))
    every = [*FEATURES, "list_changed", "resource_updates"]
    failed = False
    for feature in args.only or every:
        try:
            with anyio.fail_after(30):
                if feature == "list_changed":
                    failures = await list_changed(server, args.mode)
                elif feature == "resource_updates":
                    failures = await resource_updates(server, args.mode)
                else:
                    failures = await both_at_once(server, args.mode, feature)
        except BaseException as error:  # a feature that fails outright
            failures = [f"{type(error).__name__}: {describe(error)}"]
        if failures:
            failed = True
            print(f"FAILED {feature}: " + "; ".join(failures), flush=True)
        else:
            print(f"ok {feature}", flush=True)
    sys.exit(1 if failed else 0)


def describe(error: BaseException) -> str:
    if isinstance(error, BaseExceptionGroup):
        return "; ".join(describe(inner) for inner in error.exceptions)
    return str(error)


if __name__ == "__main__":
    anyio.run(main)
