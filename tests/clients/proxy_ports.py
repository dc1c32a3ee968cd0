"""A plugin for proxy.py (PyPI's forward proxy) that takes the connections it opens for one
port to another: `MCPS_TEST_PROXY_PORTS="NAMED:REAL,..."`. A test names its upstream by a port
nothing listens on, which only the proxy knows the way from: a request that reaches the
upstream went through the proxy. Plain requests and `CONNECT` tunnels alike.

    python -m proxy --plugins proxy_ports.PortsOnlyTheProxyKnows ...  (this folder on PYTHONPATH)
"""

import os

from proxy.http.proxy import HttpProxyBasePlugin

PORTS = {
    int(named): int(real)
    for named, real in (
        pair.split(":") for pair in os.environ.get("MCPS_TEST_PROXY_PORTS", "").split(",") if pair
    )
}


class PortsOnlyTheProxyKnows(HttpProxyBasePlugin):
    def before_upstream_connection(self, request):
        real = PORTS.get(request.port)
        if real is not None:
            request.port = real
        return request
