"""The gateway as the client under test of the conformance suite's client scenarios.

The suite starts a scenario's mock server and runs `conformance_client.py MCPS URL`, with the
scenario in MCP_CONFORMANCE_SCENARIO (its revision in MCP_CONFORMANCE_PROTOCOL_VERSION, its
inputs in MCP_CONFORMANCE_CONTEXT). This wrapper starts `mcps serve` with that server as its
only upstream (`prefix: ""`, `protocol: auto`, as a user would) and drives, through the
gateway, with the official Python SDK client, what the scenario asks a client to do: what the
mock sees is the gateway's upstream side.
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import anyio
import mcp_types as types
from mcp.client import Client

SCENARIO = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
REVISION = os.environ.get("MCP_CONFORMANCE_PROTOCOL_VERSION", "2025-11-25")
CONTEXT = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")


# What the suite's authorization servers accept as a Client ID Metadata Document's URL.
CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"
ADMIN_PASSWORD = "conformance-driver-password"


def oauth_block(directory: str) -> str:
    """The `oauth:` block an operator would write for the scenario's server (and the key file
    it names, for a client that signs its own assertions)."""
    lines = ["    oauth:"]
    if SCENARIO.startswith("auth/client-credentials"):
        lines.append("      grant: client_credentials")
    for key in ("client_id", "client_secret"):
        if CONTEXT.get(key):
            lines.append(f"      {key}: {json.dumps(CONTEXT[key])}")
    if CONTEXT.get("private_key_pem"):
        with open(os.path.join(directory, "client-key.pem"), "w") as file:
            file.write(CONTEXT["private_key_pem"])
        lines.append("      token_endpoint_auth_method: private_key_jwt")
        lines.append("      private_key_file: client-key.pem")
        lines.append(f"      signing_algorithm: {json.dumps(CONTEXT.get('signing_algorithm') or 'ES256')}")
    lines.append(f"      client_metadata_url: {json.dumps(CLIENT_METADATA_URL)}")
    return "\n".join(lines) + "\n"


# The gateway's log lines since it listened, as they come.
GATEWAY_LOG: list[str] = []


def keep_log(line: str):
    sys.stderr.write(line)
    GATEWAY_LOG.append(line)


def start_gateway(mcps: str, upstream: str, directory: str) -> tuple[subprocess.Popen, str]:
    config = os.path.join(directory, "proxy.yaml")
    with open(config, "w") as file:
        file.write(
            "upstreams:\n"
            f"  scenario:\n    url: {json.dumps(upstream)}\n    prefix: \"\"\n    startup_timeout_secs: 10\n"
        )
        if SCENARIO.startswith("auth/"):
            file.write(oauth_block(directory))
    gateway = subprocess.Popen(
        [mcps, "serve", "--listen", "127.0.0.1:0", "-c", config],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RUST_LOG": "info,rmcp=warn", "MCPS_ADMIN_PASSWORD": ADMIN_PASSWORD},
    )
    for line in gateway.stderr:
        sys.stderr.write(line)
        found = re.search(r"MCP endpoint: (\S+)", line)
        if found:
            # Keep its log flowing to ours, for the suite's report, and kept for the driver.
            threading.Thread(target=lambda: [keep_log(rest) for rest in gateway.stderr], daemon=True).start()
            return gateway, found.group(1)
    raise SystemExit(f"the gateway exited ({gateway.wait()}) before it listened")


def defaults_of(schema: dict) -> dict:
    """The content a user who accepts every suggested value sends back."""
    return {name: field["default"] for name, field in schema.get("properties", {}).items() if "default" in field}


async def elicit(context, params):
    return types.ElicitResult(action="accept", content=defaults_of(params.requested_schema) or {"confirmed": True})


async def sample(context, params):
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="ok"), model="driver")


class Admin:
    """The gateway's REST side, as its administrator: signs the gateway in to the scenario's
    server the way an operator would, with the browser's part played by plain requests."""

    def __init__(self, mcp_url: str):
        self.base = mcp_url.rsplit("/mcp", 1)[0]
        answer = self.request("POST", "/api/v1/auth/login", {"username": "admin", "password": ADMIN_PASSWORD})
        self.token = answer["token"]

    def request(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if getattr(self, "token", None):
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"null")

    def state(self) -> dict:
        return self.request("GET", "/api/v1/mcp/services/scenario")

    def settled(self) -> dict:
        """The service once it is no longer starting."""
        for _ in range(200):
            service = self.state()
            if service["state"] != "starting":
                return service
            time.sleep(0.05)
        raise SystemExit("the scenario's service did not settle")

    def sign_in(self) -> bool:
        """Signs the gateway in when the service waits for it; false when it does not."""
        if self.settled()["state"] != "needs_authorization":
            return False
        url = self.request("POST", "/api/v1/mcp/services/scenario/oauth/authorize")["authorization_url"]
        logged = len(GATEWAY_LOG)
        # The authorization server answers with a redirect to the gateway's callback, which a
        # browser would follow.
        redirect = urllib.request.urlopen(NoRedirects().open(url).headers["Location"], timeout=30)
        print("callback:", redirect.status, redirect.read().decode(errors="replace").strip(), file=sys.stderr)
        # Until the service has connected with the new token and listed what it offers (a
        # drive begun while it is still starting would list no tools, and call none), or has
        # asked for another sign-in: its state then reads as before this one, and only its
        # log tells the two apart.
        for _ in range(200):
            if any("needs authorization" in line for line in GATEWAY_LOG[logged:]):
                break
            if self.state()["state"] not in ("needs_authorization", "starting"):
                break
            time.sleep(0.05)
        return True


class NoRedirects:
    """Fetches a URL without following its redirect."""

    def open(self, url: str):
        class Keep(urllib.request.HTTPRedirectHandler):
            def redirect_request(self, *args, **kwargs):
                return None

        opener = urllib.request.build_opener(Keep)
        try:
            return opener.open(url, timeout=30)
        except urllib.error.HTTPError as answer:
            if answer.code in (301, 302, 303, 307, 308):
                return answer
            raise


async def drive_signed_in(url: str):
    """An auth scenario: sign in when asked, list and call, and sign in again when a call
    asked for more (a wider scope, a new authorization server), as long as the gateway asks."""
    admin = Admin(url)
    for attempt in range(6):
        admin.sign_in()
        try:
            await drive(url)
        except Exception as error:  # a call refused for want of a sign-in
            print(f"attempt {attempt}: {error!r}", file=sys.stderr)
        if admin.settled()["state"] != "needs_authorization":
            return


async def drive(url: str):
    mode = "2026-07-28" if REVISION == "2026-07-28" else "legacy"
    async with Client(url, mode=mode, elicitation_callback=elicit, sampling_callback=sample) as client:
        tools = (await client.list_tools()).tools
        names = [tool.name for tool in tools]
        if SCENARIO == "tools_call" and "add_numbers" in names:
            await client.call_tool("add_numbers", {"a": 5, "b": 3})
        elif SCENARIO in ("http-custom-headers",):
            for call in CONTEXT.get("toolCalls", []):
                await client.call_tool(call["name"], call["arguments"])
        elif SCENARIO == "http-invalid-tool-headers":
            for name in names:
                await client.call_tool(name, {"region": "us-west1"})
        elif SCENARIO == "http-standard-headers":
            if tools:
                await client.call_tool(names[0], {})
            resources = (await client.list_resources()).resources
            if resources:
                await client.read_resource(resources[0].uri)
            prompts = (await client.list_prompts()).prompts
            if prompts:
                await client.get_prompt(prompts[0].name, {})
        elif SCENARIO == "json-schema-2020-12-preservation":
            # The mock lists a tool and an echo tool: hand back the schema as it reached us.
            echo = next(tool for tool in tools if "schema" in tool.input_schema.get("properties", {}))
            focal = next(tool for tool in tools if tool is not echo)
            await client.call_tool(echo.name, {"schema": focal.input_schema})
        elif SCENARIO not in ("initialize", "request-metadata", "json-schema-ref-no-deref"):
            # Every other scenario: call what the mock offers.
            for name in names:
                await client.call_tool(name, {})


def main():
    mcps, upstream = sys.argv[1], sys.argv[-1]
    with tempfile.TemporaryDirectory() as directory:
        gateway, url = start_gateway(mcps, upstream, directory)
        try:
            anyio.run(drive_signed_in if SCENARIO.startswith("auth/") else drive, url)
        finally:
            gateway.terminate()
            gateway.wait(timeout=10)


if __name__ == "__main__":
    main()
