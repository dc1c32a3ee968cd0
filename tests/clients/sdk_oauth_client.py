"""Signs in to the gateway the way an MCP client does, with the official Python SDK's OAuth
support (`OAuthClientProvider`): the gateway's 401 and its protected resource metadata lead it
to the authorization server, where it registers, authorizes with PKCE (the browser's part is
played by following the redirect), gets a token, and then lists and calls tools.

    sdk_oauth_client.py --url GATEWAY_MCP_URL --mode legacy|2026-07-28 --tool NAME

Prints one JSON line: {"tools": [...], "result": <the call's text>, "signed_in": bool}.
"""

import argparse
import asyncio
import json
from urllib.parse import parse_qsl, urlsplit

import httpx2
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

REDIRECT_URI = "http://127.0.0.1:1/callback"


class Memory(TokenStorage):
    def __init__(self):
        self.tokens = None
        self.client = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


class Browser:
    """Opens the authorization URL and comes back with what the redirect carried."""

    def __init__(self):
        self.redirect = None

    async def open(self, url: str) -> None:
        async with httpx2.AsyncClient(follow_redirects=False) as http:
            answer = await http.get(url)
        self.redirect = answer.headers["location"]

    async def come_back(self) -> AuthorizationCodeResult:
        query = dict(parse_qsl(urlsplit(self.redirect).query))
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--mode", required=True)
    parser.add_argument("--tool", required=True)
    args = parser.parse_args()

    storage, browser = Memory(), Browser()
    provider = OAuthClientProvider(
        server_url=args.url,
        client_metadata=OAuthClientMetadata(
            client_name="sdk-oauth-test",
            redirect_uris=[REDIRECT_URI],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=browser.open,
        callback_handler=browser.come_back,
    )
    async with httpx2.AsyncClient(auth=provider, timeout=30) as http:
        async with Client(streamable_http_client(args.url, http_client=http), mode=args.mode) as client:
            tools = [tool.name for tool in (await client.list_tools()).tools]
            result = await client.call_tool(args.tool, {"message": "signed in"})
    text = "".join(block.text for block in result.content if block.type == "text")
    print(json.dumps({"tools": tools, "result": text, "signed_in": storage.tokens is not None}))


asyncio.run(main())
