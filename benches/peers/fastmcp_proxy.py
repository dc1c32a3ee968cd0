"""A FastMCP proxy (`fastmcp.server.create_proxy`) in front of one stdio upstream, served over
streamable HTTP: the peer the benchmark compares the gateway with.

    fastmcp_proxy.py PORT COMMAND [ARGS...]
"""

import sys

from fastmcp.server import create_proxy

port, command, args = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
config = {"mcpServers": {"echo": {"command": command, "args": args}}}
proxy = create_proxy(config)
proxy.run(transport="http", host="127.0.0.1", port=port, show_banner=False, log_level="WARNING")
