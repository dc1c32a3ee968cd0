"""An upstream built with the official Python SDK whose tools ask the client for input:
`greet` elicits a name, `summarize` samples the client's model, `roots` lists its roots.
The SDK asks the way the negotiated revision wants: a request mid-call (session era) or an
`input_required` result (2026-07-28), so one server exercises every era pairing.

    bridge_upstream.py [--http PORT]
"""

import argparse
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resolve import Elicit, ListRoots, Resolve, Sample
from mcp_types import CreateMessageResult, ListRootsResult, SamplingMessage, TextContent
from pydantic import BaseModel


class Name(BaseModel):
    name: str


def ask_name() -> Elicit[Name]:
    return Elicit("Who is calling?", Name)


def ask_model() -> Sample:
    message = SamplingMessage(role="user", content=TextContent(type="text", text="Say hi"))
    return Sample([message], max_tokens=16)


def ask_roots() -> ListRoots:
    return ListRoots()


server = MCPServer("bridge")


@server.tool()
def greet(name: Annotated[Name, Resolve(ask_name)]) -> str:
    """Greets whoever the client says is calling."""
    return f"Hello, {name.name}!"


@server.tool()
def summarize(sampled: Annotated[CreateMessageResult, Resolve(ask_model)]) -> str:
    """Returns what the client's model said."""
    return f"model said: {sampled.content.text}"


@server.tool()
def roots(listed: Annotated[ListRootsResult, Resolve(ask_roots)]) -> str:
    """Returns the client's roots."""
    return " ".join(str(root.uri) for root in listed.roots)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int)
    args = parser.parse_args()
    if args.http:
        server.run(transport="streamable-http", port=args.http)
    else:
        server.run()
