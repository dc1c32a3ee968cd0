#!/usr/bin/env bash
# The benchmark: builds the gateway and the echo upstream in release mode, installs the peer
# proxies it compares with (pinned, from PyPI; skipped if that fails), then runs every
# scenario and prints markdown tables. Arguments after `--` go to the benchmark
# (`--quick`: fewer calls, to check the benchmark itself; `--only SCENARIO`).
set -euo pipefail
cd "$(dirname "$0")/.."

env_dir="$PWD/.bench-env"
install_peer() { # NAME REQUIREMENT
    local venv="$env_dir/$1"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" || return 1
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check "$2"
}
if install_peer mcp-proxy mcp-proxy==0.13.0; then
    export MCPS_BENCH_MCP_PROXY="$env_dir/mcp-proxy/bin/mcp-proxy"
else
    echo "mcp-proxy could not be installed; its rows are skipped" >&2
fi
if install_peer fastmcp fastmcp==4.2.3; then
    export MCPS_BENCH_FASTMCP_PYTHON="$env_dir/fastmcp/bin/python"
else
    echo "fastmcp could not be installed; its rows are skipped" >&2
fi

# Scenario 1c's load generator, Debian's wrk (as root; without it that scenario is skipped).
if ! command -v wrk > /dev/null && [ "$(id -u)" = 0 ]; then
    [ -n "$(ls /var/lib/apt/lists/ 2> /dev/null | grep -v lock)" ] || apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk > /dev/null ||
        echo "wrk could not be installed; scenario 1c is skipped" >&2
fi

# The replicas scenario's PostgreSQL and nginx, as the tests start them (without them that
# scenario is skipped).
if source tests/postgres.sh; then
    trap stop_test_postgres EXIT
else
    echo "PostgreSQL could not be started; the replicas scenario is skipped" >&2
fi
source tests/nginx.sh || echo "nginx could not be found; the replicas scenario is skipped" >&2

cargo build --release --bins --examples
cargo bench --bench gateway -- "$@"
